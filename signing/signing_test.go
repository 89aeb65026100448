package signing

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The example from the Standard Webhooks specification.
const (
	specSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specMsgID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTimestamp = 1614265330
	specBody      = `{"test": 2432232314}`
	specSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func mustDecode(t testing.TB, secret string) []byte {
	t.Helper()
	key, err := DecodeSecret(secret)
	if err != nil {
		t.Fatalf("DecodeSecret: %v", err)
	}
	return key
}

func mustSecret(t testing.TB) string {
	t.Helper()
	s, err := NewSecret(nil)
	if err != nil {
		t.Fatalf("NewSecret: %v", err)
	}
	return s
}

// headers returns the Standard Webhooks headers for a message signed by s.
func headers(s *Signer, msgID string, ts int64, body []byte) http.Header {
	h := make(http.Header)
	h.Set(headerID, msgID)
	h.Set(headerTimestamp, strconv.FormatInt(ts, 10))
	h.Set(headerSignature, string(s.AppendStandard(nil, msgID, ts, body)))
	return h
}

func TestSigner_MatchesSpecExample(t *testing.T) {
	for _, secret := range []string{specSecret, strings.TrimPrefix(specSecret, SecretPrefix)} {
		s := NewSigner(mustDecode(t, secret))
		got := string(s.AppendStandard(nil, specMsgID, specTimestamp, []byte(specBody)))
		if got != specSignature {
			t.Errorf("secret %q: AppendStandard = %q, want %q", secret, got, specSignature)
		}
	}
}

func TestSigner_AppendStandardKeepsDst(t *testing.T) {
	s := NewSigner(mustDecode(t, specSecret))
	got := string(s.AppendStandard([]byte("prefix:"), specMsgID, specTimestamp, []byte(specBody)))
	if want := "prefix:" + specSignature; got != want {
		t.Errorf("AppendStandard = %q, want %q", got, want)
	}
}

func TestSigner_SignsWithEveryKeyInOrder(t *testing.T) {
	cur, prev := mustDecode(t, mustSecret(t)), mustDecode(t, specSecret)
	s := NewSigner(cur, prev)
	got := strings.Split(string(s.AppendStandard(nil, specMsgID, specTimestamp, []byte(specBody))), " ")
	if len(got) != 2 {
		t.Fatalf("got %d signatures %q, want 2", len(got), got)
	}
	if want := string(NewSigner(cur).AppendStandard(nil, specMsgID, specTimestamp, []byte(specBody))); got[0] != want {
		t.Errorf("first signature = %q, want the current key's %q", got[0], want)
	}
	if got[1] != specSignature {
		t.Errorf("second signature = %q, want the previous key's %q", got[1], specSignature)
	}
}

func TestSigner_WithoutKeysAppendsNothing(t *testing.T) {
	s := NewSigner()
	if got := s.AppendStandard(nil, "msg", 1, []byte("x")); len(got) != 0 {
		t.Errorf("AppendStandard = %q, want empty", got)
	}
	if got := s.AppendBodyHex(nil, []byte("x")); len(got) != 0 {
		t.Errorf("AppendBodyHex = %q, want empty", got)
	}
}

func TestSigner_CopiesKeys(t *testing.T) {
	key := mustDecode(t, specSecret)
	s := NewSigner(key)
	for i := range key {
		key[i] = 0
	}
	if got := string(s.AppendStandard(nil, specMsgID, specTimestamp, []byte(specBody))); got != specSignature {
		t.Errorf("after the caller overwrote its key, AppendStandard = %q, want %q", got, specSignature)
	}
}

func TestSigner_AppendBodyHexIsHexHMACOfBody(t *testing.T) {
	// Expected values from: printf %s "$body" | openssl dgst -sha256 -hmac "$key"
	tests := []struct {
		name string
		keys [][]byte
		body string
		want string
	}{
		{
			name: "one key",
			keys: [][]byte{[]byte("It's a Secret to Everybody")},
			body: "Hello, World!",
			want: "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
		},
		{
			name: "two keys",
			keys: [][]byte{[]byte("key"), []byte("It's a Secret to Everybody")},
			body: "Hello, World!",
			want: "sha256=7f424e2d0ff6bd5dec626e0102755bafec91c3510f19739a4eaec8f3bc3a01a4" +
				" sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(NewSigner(tt.keys...).AppendBodyHex(nil, []byte(tt.body)))
			if got != tt.want {
				t.Errorf("AppendBodyHex = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSigner_ConcurrentUseGivesSameSignatures(t *testing.T) {
	s := NewSigner(mustDecode(t, specSecret), []byte("previous key"))
	want := string(s.AppendStandard(nil, specMsgID, specTimestamp, []byte(specBody)))
	wantHex := string(s.AppendBodyHex(nil, []byte(specBody)))
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				// Interleave the two kinds of use of the same pooled states.
				if got := string(s.AppendStandard(nil, specMsgID, specTimestamp, []byte(specBody))); got != want {
					errs <- "AppendStandard = " + got
					return
				}
				if got := string(s.AppendBodyHex(nil, []byte(specBody))); got != wantHex {
					errs <- "AppendBodyHex = " + got
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestSigner_LongMessageIDsStillSign(t *testing.T) {
	key := []byte("k")
	msgID := strings.Repeat("m", 4*maxPooledScratch)
	s := NewSigner(key)
	for i := 0; i < 3; i++ { // reuses the pooled state after an oversized scratch buffer
		got := string(s.AppendStandard(nil, msgID, 42, []byte("body")))
		mac := hmac.New(sha256.New, key)
		io.WriteString(mac, msgID+".42.body")
		if want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)); got != want {
			t.Fatalf("round %d: AppendStandard = %q, want %q", i, got, want)
		}
	}
}

func TestNewSecret_EncodesThirtyTwoBytesFromReader(t *testing.T) {
	random := bytes.Repeat([]byte{0xfb}, 40)
	got, err := NewSecret(bytes.NewReader(random))
	if err != nil {
		t.Fatalf("NewSecret: %v", err)
	}
	if want := SecretPrefix + base64.StdEncoding.EncodeToString(random[:32]); got != want {
		t.Errorf("NewSecret = %q, want %q", got, want)
	}
	key := mustDecode(t, got)
	if !bytes.Equal(key, random[:32]) {
		t.Errorf("DecodeSecret(NewSecret) = %x, want %x", key, random[:32])
	}
}

func TestNewSecret_DefaultsToCryptoRand(t *testing.T) {
	a, b := mustSecret(t), mustSecret(t)
	if a == b {
		t.Errorf("two secrets from crypto/rand are both %q", a)
	}
	if n := len(mustDecode(t, a)); n != 32 {
		t.Errorf("key is %d bytes, want 32", n)
	}
}

func TestNewSecret_ReportsShortRandomness(t *testing.T) {
	_, err := NewSecret(bytes.NewReader(make([]byte, 31)))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("NewSecret with 31 random bytes: err = %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestDecodeSecret_RejectsWithoutEchoingSecret(t *testing.T) {
	tests := []struct {
		name, secret, wantInErr string
	}{
		{"empty", "", "empty"},
		{"prefix only", SecretPrefix, "empty"},
		{"not base64", "whsec_sup3r-s3cret!value", "base64"},
		{"url-safe alphabet", "whsec_ab-_cd==", "base64"},
		{"missing padding", "whsec_c2VjcmV0X3ZhbA", "base64"}, // needs "=="
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := DecodeSecret(tt.secret)
			if err == nil {
				t.Fatalf("DecodeSecret(%q) = %x, want an error", tt.secret, key)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.wantInErr) {
				t.Errorf("error %q does not mention %q", msg, tt.wantInErr)
			}
			if body := strings.TrimPrefix(tt.secret, SecretPrefix); body != "" && strings.Contains(msg, body) {
				t.Errorf("error %q echoes the secret", msg)
			}
		})
	}
}

func TestVerify_AcceptsSpecExample(t *testing.T) {
	h := make(http.Header)
	h.Set("Webhook-Id", specMsgID)
	h.Set("Webhook-Timestamp", strconv.Itoa(specTimestamp))
	h.Set("Webhook-Signature", specSignature)
	if err := Verify(specSecret, h, []byte(specBody), 5*time.Minute, time.Unix(specTimestamp, 0)); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestVerify_AcceptsEitherKeyDuringRotation(t *testing.T) {
	cur, prev := mustSecret(t), mustSecret(t)
	s := NewSigner(mustDecode(t, cur), mustDecode(t, prev))
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"type":"invoice.paid"}`)
	h := headers(s, "msg_1", now.Unix(), body)
	for _, secret := range []string{cur, prev} {
		if err := Verify(secret, h, body, time.Minute, now); err != nil {
			t.Errorf("Verify with one of the rotation keys: %v", err)
		}
	}
	if err := Verify(mustSecret(t), h, body, time.Minute, now); !errors.Is(err, ErrNoMatchingSignature) {
		t.Errorf("Verify with an unrelated key: err = %v, want ErrNoMatchingSignature", err)
	}
}

func TestVerify_RejectsTamperedMessages(t *testing.T) {
	secret := mustSecret(t)
	s := NewSigner(mustDecode(t, secret))
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"amount":100}`)

	tests := []struct {
		name   string
		tamper func(h http.Header) []byte
		want   error
	}{
		{"untouched", func(h http.Header) []byte { return body }, nil},
		{"body", func(h http.Header) []byte { return []byte(`{"amount":900}`) }, ErrNoMatchingSignature},
		{"body truncated", func(h http.Header) []byte { return body[:len(body)-1] }, ErrNoMatchingSignature},
		{"message id", func(h http.Header) []byte { h.Set(headerID, "msg_2"); return body }, ErrNoMatchingSignature},
		{"timestamp", func(h http.Header) []byte {
			h.Set(headerTimestamp, strconv.FormatInt(now.Unix()+1, 10))
			return body
		}, ErrNoMatchingSignature},
		{"signature flipped", func(h http.Header) []byte {
			sig := []byte(h.Get(headerSignature))
			sig[5] ^= 1
			h.Set(headerSignature, string(sig))
			return body
		}, ErrNoMatchingSignature},
		{"version changed", func(h http.Header) []byte {
			h.Set(headerSignature, "v2"+strings.TrimPrefix(h.Get(headerSignature), "v1"))
			return body
		}, ErrNoMatchingSignature},
		{"signature among others", func(h http.Header) []byte {
			h.Set(headerSignature, "v1a,xyz v1,bogus "+h.Get(headerSignature))
			return body
		}, nil},
		{"signature in second header value", func(h http.Header) []byte {
			h.Add(headerSignature, h.Get(headerSignature))
			h.Values(headerSignature)[0] = "v1,bogus"
			return body
		}, nil},
		{"missing id", func(h http.Header) []byte { h.Del(headerID); return body }, ErrMissingHeaders},
		{"missing timestamp", func(h http.Header) []byte { h.Del(headerTimestamp); return body }, ErrMissingHeaders},
		{"missing signature", func(h http.Header) []byte { h.Del(headerSignature); return body }, ErrMissingHeaders},
		{"blank signature", func(h http.Header) []byte { h.Set(headerSignature, " "); return body }, ErrMissingHeaders},
		{"timestamp not a number", func(h http.Header) []byte { h.Set(headerTimestamp, "2023-11-14T22:13:20Z"); return body }, ErrInvalidTimestamp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := headers(s, "msg_1", now.Unix(), body)
			b := tt.tamper(h)
			err := Verify(secret, h, b, time.Minute, now)
			if tt.want == nil {
				if err != nil {
					t.Errorf("Verify: %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("Verify: err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerify_EnforcesTimestampTolerance(t *testing.T) {
	secret := mustSecret(t)
	s := NewSigner(mustDecode(t, secret))
	body := []byte("{}")
	const sent = 1_700_000_000
	tol := 5 * time.Minute

	tests := []struct {
		name string
		now  time.Time
		want error
	}{
		{"same second", time.Unix(sent, 0), nil},
		{"receiver ahead at the limit", time.Unix(sent, 0).Add(tol), nil},
		{"receiver behind at the limit", time.Unix(sent, 0).Add(-tol), nil},
		{"too old", time.Unix(sent, 0).Add(tol + time.Second), ErrTimestampOutOfRange},
		{"too old by a fraction", time.Unix(sent, 0).Add(tol + time.Millisecond), ErrTimestampOutOfRange},
		{"too new", time.Unix(sent, 0).Add(-tol - time.Second), ErrTimestampOutOfRange},
		{"decades off", time.Unix(sent, 0).AddDate(30, 0, 0), ErrTimestampOutOfRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(secret, headers(s, "msg_1", sent, body), body, tol, tt.now)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("Verify: err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerify_RejectsExtremeTimestamps(t *testing.T) {
	secret := mustSecret(t)
	now := time.Unix(1_700_000_000, 0)
	for _, ts := range []string{"9223372036854775807", "-9223372036854775808", "0"} {
		h := make(http.Header)
		h.Set(headerID, "msg")
		h.Set(headerTimestamp, ts)
		h.Set(headerSignature, "v1,AAAA")
		if err := Verify(secret, h, nil, time.Hour, now); !errors.Is(err, ErrTimestampOutOfRange) {
			t.Errorf("timestamp %s: err = %v, want ErrTimestampOutOfRange", ts, err)
		}
	}
}

func TestVerify_ReportsBadSecret(t *testing.T) {
	s := NewSigner([]byte("k"))
	now := time.Unix(1_700_000_000, 0)
	err := Verify("whsec_!!!", headers(s, "m", now.Unix(), nil), nil, time.Minute, now)
	if err == nil || !strings.Contains(err.Error(), "base64") {
		t.Errorf("Verify with a malformed secret: err = %v, want a base64 error", err)
	}
}

func TestHMACHex_UsesSecretAsRawBytes(t *testing.T) {
	// GitHub's documented example:
	// https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
	got := HMACHex("It's a Secret to Everybody", []byte("Hello, World!"))
	want := "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	if got != want {
		t.Errorf("HMACHex = %q, want %q", got, want)
	}
	// A whsec_ secret is not decoded: it is just a string here.
	if HMACHex(specSecret, []byte("x")) == string(NewSigner(mustDecode(t, specSecret)).AppendBodyHex(nil, []byte("x"))) {
		t.Error("HMACHex decoded a whsec_ secret; it must use the string's bytes")
	}
}

func TestTimestamped_SignsTimeAndBody(t *testing.T) {
	// Expected value from:
	// printf %s '1614265330.{"test": 2432232314}' | openssl dgst -sha256 -hmac "It's a Secret to Everybody"
	at := time.Unix(specTimestamp, 999_000_000).In(time.FixedZone("X", 3600))
	got := Timestamped("It's a Secret to Everybody", at, []byte(specBody))
	want := "t=1614265330,v1=535d8497d859c07ff9680d86abba5699ebc7378ff8fa0443f98861d0826821f7"
	if got != want {
		t.Errorf("Timestamped = %q, want %q", got, want)
	}
	if other := Timestamped("It's a Secret to Everybody", at.Add(time.Second), []byte(specBody)); other[strings.Index(other, ",v1="):] == got[strings.Index(got, ",v1="):] {
		t.Error("Timestamped gives the same signature for different times")
	}
}
