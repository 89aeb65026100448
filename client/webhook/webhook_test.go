package webhook

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The example of the Standard Webhooks specification.
const (
	specSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTimestamp = 1614265330
	specBody      = `{"test": 2432232314}`
	specSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func headers(id string, ts int64, sig ...string) http.Header {
	h := http.Header{}
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	for _, s := range sig {
		h.Add(HeaderSignature, s)
	}
	return h
}

func at(unix int64) func() time.Time { return func() time.Time { return time.Unix(unix, 0) } }

func newSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

func TestVerify_AcceptsTheSpecificationsExample(t *testing.T) {
	v, err := NewVerifier(specSecret)
	if err != nil {
		t.Fatal(err)
	}
	v.Now = at(specTimestamp + 10)
	if err := v.Verify(headers(specID, specTimestamp, specSignature), []byte(specBody)); err != nil {
		t.Fatalf("spec example: %v", err)
	}
	if got, _ := Sign(specSecret, specID, time.Unix(specTimestamp, 0), []byte(specBody)); got != specSignature {
		t.Fatalf("Sign = %q, want the spec's %q", got, specSignature)
	}
}

// TestVerify_AgreesWithTheGoReferenceLibrary checks the verifier against
// the Standard Webhooks project's Go library, written independently: what
// it signs verifies here, and what Sign makes verifies there.
func TestVerify_AgreesWithTheGoReferenceLibrary(t *testing.T) {
	for _, body := range []string{`{"type":"order.created","data":{"id":"ord_1"}}`, "", "not json \x00\xff", strings.Repeat("x", 70000)} {
		secret := newSecret(t)
		ref, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		sig, err := ref.Sign("msg_1", now, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		h := headers("msg_1", now.Unix(), sig)
		if err := Verify(secret, h, []byte(body)); err != nil {
			t.Errorf("body of %d bytes signed by the reference: %v", len(body), err)
		}
		if err := Verify(secret, h, []byte(body+"!")); !errors.Is(err, ErrSignature) {
			t.Errorf("tampered body: %v, want ErrSignature", err)
		}
		if err := Verify(newSecret(t), h, []byte(body)); !errors.Is(err, ErrSignature) {
			t.Errorf("another secret: %v, want ErrSignature", err)
		}
		mine, err := Sign(secret, "msg_1", now, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if err := ref.Verify([]byte(body), headers("msg_1", now.Unix(), mine)); err != nil {
			t.Errorf("the reference refuses Sign's signature: %v", err)
		}
	}
}

func TestVerify_AcceptsAnyKeyDuringRotation(t *testing.T) {
	old, cur := newSecret(t), newSecret(t)
	body := []byte(`{}`)
	now := time.Now()
	sOld, _ := Sign(old, "m", now, body)
	sCur, _ := Sign(cur, "m", now, body)
	v, err := NewVerifier(cur, old)
	if err != nil {
		t.Fatal(err)
	}
	for name, h := range map[string]http.Header{
		"old only":          headers("m", now.Unix(), sOld),
		"both, one header":  headers("m", now.Unix(), sCur+" "+sOld),
		"both, two headers": headers("m", now.Unix(), "v1,bogus", sCur),
		"unknown versions":  headers("m", now.Unix(), "v2,xyz v1a,abc "+sCur),
	} {
		if err := v.Verify(h, body); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	only, _ := NewVerifier(cur)
	if err := only.Verify(headers("m", now.Unix(), sOld), body); !errors.Is(err, ErrSignature) {
		t.Errorf("the old secret alone verified without it: %v", err)
	}
}

func TestVerify_EnforcesTheTimestampTolerance(t *testing.T) {
	secret := newSecret(t)
	body := []byte(`{"a":1}`)
	ts := int64(1_700_000_000)
	sig, _ := Sign(secret, "m", time.Unix(ts, 0), body)
	tests := []struct {
		name      string
		now       int64
		tolerance time.Duration
		ok        bool
	}{
		{"on time", ts, 0, true},
		{"five minutes late", ts + 300, 0, true},
		{"just over five minutes late", ts + 301, 0, false},
		{"from the future", ts - 301, 0, false},
		{"wider tolerance", ts + 3000, time.Hour, true},
		{"unchecked", ts + 1e7, -1, true},
	}
	for _, tt := range tests {
		v, _ := NewVerifier(secret)
		v.Now, v.Tolerance = at(tt.now), tt.tolerance
		err := v.Verify(headers("m", ts, sig), body)
		if tt.ok && err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
		if !tt.ok && !errors.Is(err, ErrTimestamp) {
			t.Errorf("%s: %v, want ErrTimestamp", tt.name, err)
		}
	}
	v, _ := NewVerifier(secret)
	h := headers("m", ts, sig)
	h.Set(HeaderTimestamp, "yesterday")
	if err := v.Verify(h, body); !errors.Is(err, ErrTimestamp) {
		t.Errorf("non-numeric timestamp: %v", err)
	}
}

func TestVerify_RefusesMissingHeadersAndBadKeys(t *testing.T) {
	v, _ := NewVerifier(newSecret(t))
	for _, drop := range []string{HeaderID, HeaderTimestamp, HeaderSignature} {
		h := headers("m", time.Now().Unix(), "v1,abc")
		h.Del(drop)
		if err := v.Verify(h, nil); !errors.Is(err, ErrMissingHeaders) {
			t.Errorf("without %s: %v", drop, err)
		}
	}
	for _, k := range []string{"", "whsec_!!!", "whpk_c2hvcnQ=", "whsk_" + base64.StdEncoding.EncodeToString(make([]byte, 32))} {
		if _, err := NewVerifier(k); err == nil {
			t.Errorf("NewVerifier(%q) succeeded", k)
		}
	}
}

func TestVerify_Ed25519(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	pk := PrefixPublicKey + base64.StdEncoding.EncodeToString(pub)
	sk := PrefixPrivateKey + base64.StdEncoding.EncodeToString(priv.Seed())
	now := time.Now()
	body := []byte(`{"x":true}`)
	sig, err := Sign(sk, "m", now, body)
	if err != nil || !strings.HasPrefix(sig, "v1a,") {
		t.Fatalf("Sign with whsk_: %q %v", sig, err)
	}
	hmacSecret := newSecret(t)
	v, err := NewVerifier(pk, hmacSecret)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(headers("m", now.Unix(), sig), body); err != nil {
		t.Errorf("ed25519 signature: %v", err)
	}
	if err := v.Verify(headers("m", now.Unix(), sig), []byte(`{"x":false}`)); !errors.Is(err, ErrSignature) {
		t.Errorf("tampered: %v", err)
	}
	// An HMAC signature labelled v1a must not pass, nor v1a as v1.
	hs, _ := Sign(hmacSecret, "m", now, body)
	if err := v.Verify(headers("m", now.Unix(), "v1a,"+strings.TrimPrefix(hs, "v1,")), body); !errors.Is(err, ErrSignature) {
		t.Errorf("relabelled HMAC: %v", err)
	}
	if err := v.Verify(headers("m", now.Unix(), "v1,"+strings.TrimPrefix(sig, "v1a,")), body); !errors.Is(err, ErrSignature) {
		t.Errorf("relabelled Ed25519: %v", err)
	}
}

// requireNode returns node's path, or skips unless HERALD_REQUIRE_NODE=1.
func requireNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		return node
	}
	if os.Getenv("HERALD_REQUIRE_NODE") == "1" {
		t.Fatalf("node is needed for the independent Ed25519 check (HERALD_REQUIRE_NODE=1): %v", err)
	}
	t.Skipf("node is needed for the independent Ed25519 check: %v", err)
	return ""
}

// TestVerify_Ed25519AgreesWithNodeCrypto checks v1a signatures both ways
// against Node's crypto, an implementation independent of Go's.
func TestVerify_Ed25519AgreesWithNodeCrypto(t *testing.T) {
	node := requireNode(t)
	now := time.Now()
	type msg struct {
		ID        string `json:"id"`
		Timestamp int64  `json:"timestamp"`
		Body      string `json:"body"`
		PublicKey string `json:"publicKey,omitempty"`
		Signature string `json:"signature,omitempty"`
	}
	bodies := []string{`{"type":"order.created","data":{"total":12.5}}`, "", "ünïcödé ✓", strings.Repeat("y", 100000)}
	var sign []msg
	for i, b := range bodies {
		sign = append(sign, msg{ID: "msg_" + strconv.Itoa(i), Timestamp: now.Unix(), Body: b})
	}
	// Signatures of ours for Node to verify.
	pub, priv, _ := ed25519.GenerateKey(nil)
	sk := PrefixPrivateKey + base64.StdEncoding.EncodeToString(priv.Seed())
	pk := PrefixPublicKey + base64.StdEncoding.EncodeToString(pub)
	var verify []msg
	for _, m := range sign {
		s, err := Sign(sk, m.ID, now, []byte(m.Body))
		if err != nil {
			t.Fatal(err)
		}
		m.PublicKey, m.Signature = pk, s
		verify = append(verify, m)
	}
	bad := verify[0]
	bad.Body += "!"
	verify = append(verify, bad)

	in, _ := json.Marshal(map[string]any{"sign": sign, "verify": verify})
	cmd := exec.Command(node, "testdata/ed25519.mjs")
	cmd.Stdin = bytes.NewReader(in)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var res struct {
		PublicKey  string   `json:"publicKey"`
		Signatures []string `json:"signatures"`
		Verified   []bool   `json:"verified"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("node printed %q: %v", out, err)
	}
	v, err := NewVerifier(res.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range sign {
		if err := v.Verify(headers(m.ID, m.Timestamp, res.Signatures[i]), []byte(m.Body)); err != nil {
			t.Errorf("body %d signed by node: %v", i, err)
		}
		if err := v.Verify(headers(m.ID, m.Timestamp, res.Signatures[i]), []byte(m.Body+"x")); !errors.Is(err, ErrSignature) {
			t.Errorf("body %d tampered: %v", i, err)
		}
	}
	for i, ok := range res.Verified {
		if want := i < len(bodies); ok != want {
			t.Errorf("node verified our signature %d: %v, want %v", i, ok, want)
		}
	}
}

func TestVerifyRequest_ReadsBoundedBodyAndDecodesTheEnvelope(t *testing.T) {
	secret := newSecret(t)
	body := []byte(`{"id":"evt_1","type":"order.created","timestamp":"2026-01-02T03:04:05Z","data":{"id":"ord_1"}}`)
	now := time.Now()
	sig, _ := Sign(secret, "evt_1", now, body)
	v, _ := NewVerifier(secret)
	r := httptest.NewRequest(http.MethodPost, "/hook", bytes.NewReader(body))
	r.Header = headers("evt_1", now.Unix(), sig)
	m, err := v.VerifyRequest(r)
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != "evt_1" || m.Type != "order.created" || string(m.Data) != `{"id":"ord_1"}` || m.Timestamp.Year() != 2026 {
		t.Errorf("message %+v", m)
	}
	v.MaxBodyBytes = 10
	r = httptest.NewRequest(http.MethodPost, "/hook", bytes.NewReader(body))
	r.Header = headers("evt_1", now.Unix(), sig)
	if _, err := v.VerifyRequest(r); !errors.Is(err, ErrBodyTooLarge) {
		t.Errorf("large body: %v", err)
	}
}
