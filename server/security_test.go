package server_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/internal/pgcluster"
	"github.com/heraldhq/herald/internal/pgtest"
	"github.com/heraldhq/herald/server"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	PEM  string
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, PEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

// issue returns a certificate signed by ca and its private key, in PEM:
// a server certificate for 127.0.0.1, or a client certificate.
func (ca *testCA) issue(t *testing.T, cn string, server bool, validFor time.Duration) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(validFor),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}

// randomText returns a distinctive random string to find in files.
func randomText(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

func newEncryptionKey(t *testing.T, id string) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return id + ":" + base64.StdEncoding.EncodeToString(b)
}

// endpointsWithEverySecret creates one endpoint per kind of credential and
// returns every secret value it gave Herald (and the signing secrets
// Herald returned).
func endpointsWithEverySecret(t *testing.T, s *heraldtest.Server, url string) []string {
	t.Helper()
	ca := newTestCA(t, "secrets CA")
	cert, key := ca.issue(t, "herald", false, 24*time.Hour)
	var secrets []string
	add := func(prefix string) string {
		v := randomText(t, prefix)
		secrets = append(secrets, v)
		return v
	}
	inputs := []map[string]any{
		{"auth": map[string]any{"type": "BEARER", "token": add("bearer-")}},
		{"auth": map[string]any{"type": "BASIC", "username": "u", "password": add("password-")}},
		{"auth": map[string]any{"type": "API_KEY", "headerName": "X-Api-Key", "headerValue": add("apikey-")}},
		{"auth": map[string]any{"type": "HMAC", "secret": add("hmacsecret-")}},
		{"auth": map[string]any{"type": "SIGNATURE", "secret": add("sigsecret-")}},
		{"auth": map[string]any{"type": "OAUTH2_CLIENT_CREDENTIALS", "tokenUrl": url + "/token", "clientId": "c", "clientSecret": add("clientsecret-")}},
		{"headers": []map[string]any{{"name": "X-Custom", "value": add("header-"), "secret": true}}},
		{"tls": map[string]any{"clientCertificate": cert, "clientKey": key}},
		{"signatureScheme": "ED25519"},
	}
	// The key's base64 body, without its PEM armour.
	keyBody := strings.Join(strings.Split(key, "\n")[1:3], "")
	secrets = append(secrets, keyBody[:40])
	for i, in := range inputs {
		in["url"] = fmt.Sprintf("%s/ep%d", url, i)
		_, signing := s.CreateEndpoint(s.Token, in)
		if signing == "" {
			t.Fatalf("createEndpoint(%v) returned no secret", in)
		}
		if strings.HasPrefix(signing, "whsec_") {
			secrets = append(secrets, strings.TrimPrefix(signing, "whsec_"))
		}
	}
	return secrets
}

// findIn returns the secrets found in the files.
func findIn(t *testing.T, secrets []string, paths ...string) []string {
	t.Helper()
	var found []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				found = append(found, fmt.Sprintf("%s in %s", s, filepath.Base(p)))
			}
		}
	}
	return found
}

func TestSecrets_NotInTheSQLiteFilesAndKeyFileCreated(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, nil)
	secrets := endpointsWithEverySecret(t, s, rc.URL)
	files := []string{s.DBPath, s.DBPath + "-wal", s.DBPath + "-shm"}
	if found := findIn(t, secrets, files...); len(found) > 0 {
		t.Errorf("secrets stored in the clear while herald runs: %v", found)
	}
	// The read side still sees masked values, and sends real ones.
	var out struct {
		Endpoints struct {
			Edges []struct {
				Node struct {
					Auth struct{ Token, Password *string }
					TLS  *struct{ ClientKey *string } `json:"tls"`
				}
			}
		}
	}
	s.Do(s.Token, `{ endpoints(first: 20) { edges { node { auth { token password } tls { clientKey } } } } }`, nil).Decode(t, &out)
	for _, e := range out.Endpoints.Edges {
		for _, v := range []*string{e.Node.Auth.Token, e.Node.Auth.Password} {
			if v != nil && len(*v) > 12 && !strings.Contains(*v, "*") && !strings.Contains(*v, "•") {
				t.Errorf("a credential reads back unmasked: %q", *v)
			}
		}
	}
	s.Close()
	if found := findIn(t, secrets, files...); len(found) > 0 {
		t.Errorf("secrets stored in the clear after herald stopped: %v", found)
	}
	info, err := os.Stat(server.KeyFilePath(s.DBPath))
	if err != nil {
		t.Fatalf("no key file beside the database: %v", err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, want 0600", info.Mode().Perm())
	}
}

func TestSecrets_RotationReencryptsWhilePublishingAndAWrongKeyRefusesToStart(t *testing.T) {
	t.Parallel()
	k1, k2 := newEncryptionKey(t, "k1"), newEncryptionKey(t, "k2")
	s := heraldtest.Start(t, func(c *server.Config) { c.EncryptionKeys = k1 })
	var got atomic.Int64
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer rotation-token" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		got.Add(1)
	})
	const endpoints = 12
	for i := range endpoints {
		s.CreateEndpoint(s.Token, map[string]any{"url": fmt.Sprintf("%s/ep%d", rc.URL, i), "name": fmt.Sprint("ep", i), "auth": map[string]any{"type": "BEARER", "token": "rotation-token"}})
	}
	// The new key first: k1 still opens what it sealed.
	s = s.Restart(func(c *server.Config) { c.EncryptionKeys = k2 + "," + k1 })
	type keyUse struct {
		ID         string
		Configured bool
		Endpoints  int
	}
	var before struct {
		EncryptionKeys struct {
			Primary string
			Keys    []keyUse
		}
	}
	s.Do(s.Token, `{ encryptionKeys { primary keys { id configured endpoints } } }`, nil).Decode(t, &before)
	if before.EncryptionKeys.Primary != "k2" || len(before.EncryptionKeys.Keys) != 2 || before.EncryptionKeys.Keys[1].Endpoints != endpoints {
		t.Fatalf("before rotation: %+v", before.EncryptionKeys)
	}
	// Publish while rotating, in small batches so that rotation and
	// publishing interleave.
	stop := make(chan struct{})
	var published atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			s.Publish(s.Token, "order.created", map[string]any{"n": published.Load()})
			published.Add(1)
		}
	})
	var rot struct {
		RotateEncryptionKeys struct {
			Primary   string
			Resealed  int
			Remaining []keyUse
			Done      bool
		}
	}
	total := 0
	for range endpoints + 1 {
		s.Do(s.Token, `mutation { rotateEncryptionKeys(input: {batchSize: 1, maxBatches: 1}) { primary resealed remaining { id configured endpoints } done } }`, nil).Decode(t, &rot)
		total += rot.RotateEncryptionKeys.Resealed
		if rot.RotateEncryptionKeys.Done {
			break
		}
	}
	close(stop)
	wg.Wait()
	if !rot.RotateEncryptionKeys.Done || total != endpoints || len(rot.RotateEncryptionKeys.Remaining) != 0 {
		t.Fatalf("rotation: resealed %d of %d, last answer %+v", total, endpoints, rot.RotateEncryptionKeys)
	}
	// Everything published during the rotation is delivered, with the
	// credentials opened under either key.
	want := published.Load() * endpoints
	if !heraldtest.Eventually(60*time.Second, func() bool { return got.Load() >= want }) {
		t.Fatalf("delivered %d of %d", got.Load(), want)
	}
	// k1 is no longer needed.
	s = s.Restart(func(c *server.Config) { c.EncryptionKeys = k2 })
	s.Publish(s.Token, "order.created", map[string]any{"after": "rotation"})
	if !heraldtest.Eventually(30*time.Second, func() bool { return got.Load() >= want+endpoints }) {
		t.Fatalf("after dropping k1: delivered %d of %d", got.Load(), want+endpoints)
	}
	// Without k2, or with another key named k2, Herald refuses to start,
	// naming the key it needs.
	s.Close()
	for _, keys := range []string{k1, newEncryptionKey(t, "k2")} {
		cfg := server.Config{DBPath: s.DBPath, EncryptionKeys: keys, Logger: heraldtest.Logger(t)}
		srv, err := server.New(context.Background(), cfg)
		if err == nil {
			srv.Close(context.Background())
			t.Fatalf("herald started with keys %s", strings.Split(keys, ":")[0])
		}
		if !strings.Contains(err.Error(), `"k2"`) {
			t.Errorf("start with key %s: error %q does not name key k2", strings.Split(keys, ":")[0], err)
		}
	}
}

func TestMutualTLS_PresentsTheClientCertificateAndTrustsOnlyTheGivenRoots(t *testing.T) {
	t.Parallel()
	serverCA, clientCA, otherCA := newTestCA(t, "server CA"), newTestCA(t, "client CA"), newTestCA(t, "other CA")
	srvCert, srvKey := serverCA.issue(t, "receiver", true, 24*time.Hour)
	pair, err := tls.X509KeyPair([]byte(srvCert), []byte(srvKey))
	if err != nil {
		t.Fatal(err)
	}
	clientPool := x509.NewCertPool()
	clientPool.AddCert(clientCA.cert)
	var mu sync.Mutex
	var seen []string
	rs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.TLS.PeerCertificates[0].Subject.CommonName)
		mu.Unlock()
	}))
	rs.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientPool}
	rs.StartTLS()
	t.Cleanup(rs.Close)

	s := heraldtest.Start(t)
	createEventTypes(t, s, "mtls.good", "mtls.nocert", "mtls.untrusted", "mtls.soon")
	cert, key := clientCA.issue(t, "herald-client", false, 60*24*time.Hour)
	soon, soonKey := clientCA.issue(t, "herald-soon", false, 3*24*time.Hour)
	retry := map[string]any{"maxAttempts": 1, "initialDelay": "1s", "backoffMultiplier": 1, "maxDelay": "1s"}
	good, _ := s.CreateEndpoint(s.Token, map[string]any{"url": rs.URL, "eventTypes": []string{"mtls.good"}, "retryPolicy": retry,
		"tls": map[string]any{"clientCertificate": cert, "clientKey": key, "caCertificates": serverCA.PEM}})
	s.CreateEndpoint(s.Token, map[string]any{"url": rs.URL, "eventTypes": []string{"mtls.nocert"}, "retryPolicy": retry,
		"tls": map[string]any{"caCertificates": serverCA.PEM}})
	s.CreateEndpoint(s.Token, map[string]any{"url": rs.URL, "eventTypes": []string{"mtls.untrusted"}, "retryPolicy": retry,
		"tls": map[string]any{"clientCertificate": cert, "clientKey": key, "caCertificates": otherCA.PEM}})
	soonID, _ := s.CreateEndpoint(s.Token, map[string]any{"url": rs.URL, "eventTypes": []string{"mtls.soon"}, "retryPolicy": retry,
		"tls": map[string]any{"clientCertificate": soon, "clientKey": soonKey, "caCertificates": serverCA.PEM}})

	ok := s.WaitDelivery(s.Token, s.Publish(s.Token, "mtls.good", map[string]any{}), 30*time.Second, func(d heraldtest.Delivery) bool { return d.Status != "PENDING" })
	if ok.Status != "SUCCEEDED" {
		t.Fatalf("with the client certificate: %s %v", ok.Status, deref(ok.LastError))
	}
	mu.Lock()
	if len(seen) != 1 || seen[0] != "herald-client" {
		t.Errorf("the receiver saw client certificates %v", seen)
	}
	mu.Unlock()
	for _, c := range []struct{ eventType, want string }{
		{"mtls.nocert", "certificate"},
		{"mtls.untrusted", "x509"},
	} {
		d := s.WaitDelivery(s.Token, s.Publish(s.Token, c.eventType, map[string]any{}), 30*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "FAILED" })
		if d.LastError == nil || !strings.Contains(strings.ToLower(*d.LastError), c.want) {
			t.Errorf("%s: error %q does not mention %q", c.eventType, deref(d.LastError), c.want)
		}
	}

	// The certificate's expiry shows on the endpoint, its key masked.
	var out struct {
		Node struct {
			TLS struct {
				ClientKey   string
				ExpiresAt   time.Time
				ExpiresSoon bool
			} `json:"tls"`
		}
	}
	for id, soonWanted := range map[string]bool{good: false, soonID: true} {
		s.Do(s.Token, `query($id: ID!) { node(id: $id) { ... on Endpoint { tls { clientKey expiresAt expiresSoon } } } }`, map[string]any{"id": id}).Decode(t, &out)
		if out.Node.TLS.ExpiresSoon != soonWanted || out.Node.TLS.ExpiresAt.IsZero() || strings.Contains(out.Node.TLS.ClientKey, "PRIVATE KEY-----\n") {
			t.Errorf("endpoint %s tls = %+v, want expiresSoon %v and a masked key", id, out.Node.TLS, soonWanted)
		}
	}

	// A certificate about to expire is reported by a webhook.certificate_expiring
	// event, once, when Herald looks (at start, then hourly).
	ops := heraldtest.NewReceiver(t, nil)
	s.CreateEndpoint(s.Token, map[string]any{"url": ops.URL, "eventTypes": []string{"webhook.certificate_expiring"}})
	s = s.Restart()
	warning := ops.WaitRequests(t, 1, 30*time.Second)[0]
	var env struct {
		Type string
		Data struct {
			EndpointID string
			DaysLeft   int
		}
	}
	if err := json.Unmarshal(warning.Body, &env); err != nil {
		t.Fatal(err)
	}
	if env.Type != "webhook.certificate_expiring" || env.Data.EndpointID != soonID || env.Data.DaysLeft != 2 {
		t.Errorf("certificate warning = %s, want endpoint %s with 2 days left", warning.Body, soonID)
	}

	// Invalid or mismatched PEM is refused at save, naming the field.
	_, otherKey := clientCA.issue(t, "other", false, time.Hour)
	for _, c := range []struct {
		tls   map[string]any
		field string
	}{
		{map[string]any{"clientCertificate": cert, "clientKey": otherKey}, "clientKey"},
		{map[string]any{"clientCertificate": "not a certificate", "clientKey": key}, "clientCertificate"},
		{map[string]any{"caCertificates": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"}, "caCertificates"},
	} {
		r := s.Do(s.Token, `mutation($in: CreateEndpointInput!) { createEndpoint(input: $in) { secret } }`,
			map[string]any{"in": map[string]any{"name": "bad", "url": rs.URL, "eventTypes": []string{"*"}, "tls": c.tls}})
		if r.Code() != "BAD_USER_INPUT" || !strings.Contains(r.Field()+r.Reason(), c.field) {
			t.Errorf("tls %v: got %s %q %q, want BAD_USER_INPUT naming %s", c.tls, r.Code(), r.Field(), r.Reason(), c.field)
		}
	}
}

func createEventTypes(t *testing.T, s *heraldtest.Server, names ...string) {
	t.Helper()
	for _, n := range names {
		s.Do(s.Token, `mutation($n: String!) { createEventType(input: {name: $n}) { id } }`, map[string]any{"n": n}).CheckErrors(t)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// tokenServer is an OAuth2 token endpoint that counts its requests and
// issues numbered tokens valid for lifetime.
type tokenServer struct {
	*httptest.Server
	requests atomic.Int64
	mu       sync.Mutex
	valid    map[string]time.Time
}

func newTokenServer(t *testing.T, lifetime time.Duration) *tokenServer {
	ts := &tokenServer{valid: map[string]time.Time{}}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := ts.requests.Add(1)
		id, sec, ok := r.BasicAuth()
		if err := r.ParseForm(); err != nil || r.Form.Get("grant_type") != "client_credentials" {
			http.Error(w, `{"error":"unsupported_grant_type"}`, http.StatusBadRequest)
			return
		}
		if !ok {
			id, sec = r.Form.Get("client_id"), r.Form.Get("client_secret")
		}
		if id != "herald" || sec != "client-secret-value" || r.Form.Get("audience") != "https://api.example" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"invalid_client"}`))
			return
		}
		tok := fmt.Sprintf("token-%d", n)
		ts.mu.Lock()
		ts.valid[tok] = time.Now().Add(lifetime)
		ts.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": int(lifetime.Seconds())})
	}))
	t.Cleanup(ts.Close)
	return ts
}

// check reports whether an Authorization header carries a valid token.
func (ts *tokenServer) check(h string) bool {
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return false
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	exp, ok := ts.valid[tok]
	return ok && time.Now().Before(exp)
}

// allExpired reports whether every token issued so far has expired.
func (ts *tokenServer) allExpired() bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, exp := range ts.valid {
		if time.Now().Before(exp) {
			return false
		}
	}
	return true
}

func (ts *tokenServer) revokeAll() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	clear(ts.valid)
}

func oauthEndpoint(s *heraldtest.Server, rc *heraldtest.Receiver, ts *tokenServer, eventType string) {
	s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL, "eventTypes": []string{eventType},
		"retryPolicy": map[string]any{"maxAttempts": 5, "initialDelay": "100ms", "backoffMultiplier": 1, "maxDelay": "100ms"},
		"auth": map[string]any{"type": "OAUTH2_CLIENT_CREDENTIALS", "tokenUrl": ts.URL + "/token", "clientId": "herald",
			"clientSecret": "client-secret-value", "scopes": []string{"webhooks:write"}, "audience": "https://api.example"}})
}

func publishMany(t *testing.T, s *heraldtest.Server, eventType string, n int) {
	t.Helper()
	for n > 0 {
		batch := min(n, 100)
		in := make([]map[string]any, batch)
		for i := range in {
			in[i] = map[string]any{"eventType": eventType, "payload": map[string]any{"i": i}}
		}
		s.Do(s.Token, `mutation($in: [PublishEventInput!]!) { publishEvents(input: $in) { id } }`, map[string]any{"in": in}).CheckErrors(t)
		n -= batch
	}
}

func TestOAuth2_ManyDeliveriesWithExpiringTokensNeedFewTokenRequests(t *testing.T) {
	t.Parallel()
	const lifetime = time.Second
	ts := newTokenServer(t, lifetime)
	var ok, refused atomic.Int64
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if !ts.check(r.Header.Get("Authorization")) {
			refused.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		ok.Add(1)
	})
	s := heraldtest.Start(t)
	oauthEndpoint(s, rc, ts, "order.created")
	// 1,000 deliveries in five rounds, each after every token issued so
	// far has expired: a round needs a new token, and one is enough for
	// it while it lasts.
	const rounds, perRound = 5, 200
	start := time.Now()
	for round := 1; round <= rounds; round++ {
		if !heraldtest.Eventually(10*time.Second, ts.allExpired) {
			t.Fatal("tokens did not expire")
		}
		publishMany(t, s, "order.created", perRound)
		if !heraldtest.Eventually(120*time.Second, func() bool { return ok.Load() >= int64(round*perRound) }) {
			t.Fatalf("round %d: delivered %d of %d (refused %d)", round, ok.Load(), round*perRound, refused.Load())
		}
	}
	elapsed := time.Since(start)
	// A token is used until a fifth of its life before it expires: at
	// least one per round, at most one per 800ms beyond that.
	got, limit := ts.requests.Load(), int64(rounds)+int64(elapsed/(lifetime*4/5))
	if got < rounds || got > limit {
		t.Errorf("%d token requests for %d deliveries in %d rounds and %s, want %d to %d", got, rounds*perRound, rounds, elapsed.Round(time.Millisecond), rounds, limit)
	}
	t.Logf("%d deliveries in %s: %d token requests, %d refused", rounds*perRound, elapsed.Round(time.Millisecond), got, refused.Load())

}

func TestOAuth2_ARevokedTokenIsRefreshedOnce(t *testing.T) {
	t.Parallel()
	ts := newTokenServer(t, time.Hour)
	var ok, refused atomic.Int64
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if !ts.check(r.Header.Get("Authorization")) {
			refused.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		ok.Add(1)
	})
	s := heraldtest.Start(t)
	oauthEndpoint(s, rc, ts, "order.created")
	publishMany(t, s, "order.created", 20)
	if !heraldtest.Eventually(60*time.Second, func() bool { return ok.Load() >= 20 }) {
		t.Fatalf("delivered %d of 20", ok.Load())
	}
	if got := ts.requests.Load(); got != 1 {
		t.Fatalf("%d token requests for 20 deliveries, want 1", got)
	}
	// Revoke every token: the next sends get 401 and fetch one new token,
	// once, then deliver in the same attempt.
	before, refusedBefore := ts.requests.Load(), refused.Load()
	ts.revokeAll()
	delivered := ok.Load()
	publishMany(t, s, "order.created", 20)
	if !heraldtest.Eventually(60*time.Second, func() bool { return ok.Load() >= delivered+20 }) {
		t.Fatalf("after revocation: delivered %d of 20", ok.Load()-delivered)
	}
	if got := ts.requests.Load() - before; got != 1 {
		t.Errorf("token requests after revocation = %d, want 1", got)
	}
	if refused.Load() == refusedBefore {
		t.Errorf("the revoked token was never refused")
	}
}

func TestOAuth2_ATokenRequestRefusedIsAClearAttemptError(t *testing.T) {
	t.Parallel()
	ts := newTokenServer(t, time.Hour)
	rc := heraldtest.NewReceiver(t, nil)
	s := heraldtest.Start(t)
	createEventTypes(t, s, "oauth.refused")
	s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL, "eventTypes": []string{"oauth.refused"},
		"auth": map[string]any{"type": "OAUTH2_CLIENT_CREDENTIALS", "tokenUrl": ts.URL + "/token", "clientId": "herald", "clientSecret": "wrong"}})
	d := s.WaitDelivery(s.Token, s.Publish(s.Token, "oauth.refused", map[string]any{}), 30*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "FAILED" })
	if d.LastError == nil || !strings.Contains(*d.LastError, "token") || !strings.Contains(*d.LastError, "401") {
		t.Errorf("last error = %q, want the token endpoint's 401", deref(d.LastError))
	}
	if len(rc.Requests()) != 0 {
		t.Errorf("the endpoint was called without a token")
	}
}

// ed25519Verifier verifies Standard Webhooks v1a signatures with Node's
// crypto module, an implementation independent of Herald's: it reads
// {key, content, signature} lines and prints "ok" or "bad" for each.
const ed25519Verifier = `
const crypto = require('crypto');
const rl = require('readline').createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const { key, content, signature } = JSON.parse(line);
  const raw = Buffer.from(key.replace(/^whpk_/, ''), 'base64');
  const pub = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
  const ok = crypto.verify(null, Buffer.from(content), pub, Buffer.from(signature, 'base64'));
  console.log(ok ? 'ok' : 'bad');
});
`

func TestEd25519_SignaturesVerifyWithNodeCryptoDuringRotation(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("HERALD_REQUIRE_NODE") == "1" {
			t.Fatal("node is needed to verify Ed25519 signatures independently (HERALD_REQUIRE_NODE=1)")
		}
		t.Skip("node is needed to verify Ed25519 signatures independently")
	}
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, nil)
	id, pub1 := s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL, "signatureScheme": "ED25519"})
	if !strings.HasPrefix(pub1, "whpk_") {
		t.Fatalf("createEndpoint returned %q, want a public key whpk_…", pub1)
	}
	var ep struct {
		Node struct{ PublicKey, SignatureScheme string }
	}
	s.Do(s.Token, `query($id: ID!) { node(id: $id) { ... on Endpoint { publicKey signatureScheme } } }`, map[string]any{"id": id}).Decode(t, &ep)
	if ep.Node.PublicKey != pub1 || ep.Node.SignatureScheme != "ED25519" {
		t.Fatalf("endpoint reads %+v, want publicKey %s", ep.Node, pub1)
	}
	s.Publish(s.Token, "order.created", map[string]any{"before": "rotation"})
	rc.WaitRequests(t, 1, 30*time.Second)
	var rot struct {
		RotateEndpointSecret struct{ Secret string }
	}
	s.Do(s.Token, `mutation($id: ID!) { rotateEndpointSecret(id: $id, input: {overlap: "1h"}) { secret } }`, map[string]any{"id": id}).Decode(t, &rot)
	pub2 := rot.RotateEndpointSecret.Secret
	if !strings.HasPrefix(pub2, "whpk_") || pub2 == pub1 {
		t.Fatalf("rotation returned %q", pub2)
	}
	s.Publish(s.Token, "order.created", map[string]any{"during": "rotation"})
	reqs := rc.WaitRequests(t, 2, 30*time.Second)

	type check struct{ Key, Content, Signature string }
	var lines []check
	for i, r := range reqs {
		content := r.Header.Get("webhook-id") + "." + r.Header.Get("webhook-timestamp") + "." + string(r.Body)
		var sigs []string
		for _, f := range strings.Fields(r.Header.Get("webhook-signature")) {
			if v, ok := strings.CutPrefix(f, "v1a,"); ok {
				sigs = append(sigs, v)
			}
		}
		wantSigs := 1 + i // the second request is signed with both keys
		if len(sigs) != wantSigs {
			t.Fatalf("request %d has %d v1a signatures (%q), want %d", i, len(sigs), r.Header.Get("webhook-signature"), wantSigs)
		}
		keys := []string{pub1}
		if i == 1 {
			keys = []string{pub2, pub1}
		}
		// Each key verifies exactly one signature of the request.
		for _, k := range keys {
			for _, sig := range sigs {
				lines = append(lines, check{k, content, sig})
			}
		}
		// and a tampered body verifies with none.
		lines = append(lines, check{keys[0], content + " ", sigs[0]})
	}
	var in bytes.Buffer
	for _, l := range lines {
		b, _ := json.Marshal(map[string]string{"key": l.Key, "content": l.Content, "signature": l.Signature})
		in.Write(append(b, '\n'))
	}
	cmd := exec.Command(node, "-e", ed25519Verifier)
	cmd.Stdin = &in
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	got := strings.Fields(string(out))
	if len(got) != len(lines) {
		t.Fatalf("node printed %q for %d checks", out, len(lines))
	}
	// Request 0: [pub1·sig] ok, [tampered] bad.
	if got[0] != "ok" || got[1] != "bad" {
		t.Errorf("before rotation: node says %v, want [ok bad]", got[:2])
	}
	// Request 1: pub2 and pub1 each verify exactly one of the two
	// signatures; the tampered content verifies with neither.
	r1 := got[2:]
	if count(r1[0:2], "ok") != 1 || count(r1[2:4], "ok") != 1 || r1[0] == r1[2] || r1[4] != "bad" {
		t.Errorf("during rotation: node says %v, want each key to verify one signature", r1)
	}
}

func count(xs []string, v string) int {
	n := 0
	for _, x := range xs {
		if x == v {
			n++
		}
	}
	return n
}

// tinyproxy is Debian's tinyproxy, run as an egress proxy on a loopback
// port, with Basic credentials herald:proxy-password.
type tinyproxy struct {
	t    *testing.T
	bin  string
	conf string
	Addr string
	cmd  *exec.Cmd
	done chan struct{}
	out  heraldtest.SyncBuffer // its log, across restarts
}

// startTinyproxy starts tinyproxy, or skips the test when it is not
// installed, unless HERALD_REQUIRE_TINYPROXY=1 (as CI sets it).
func startTinyproxy(t *testing.T) *tinyproxy {
	t.Helper()
	bin, err := exec.LookPath("tinyproxy")
	if err != nil {
		if _, serr := os.Stat("/usr/bin/tinyproxy"); serr == nil {
			bin, err = "/usr/bin/tinyproxy", nil
		}
	}
	if err != nil {
		if os.Getenv("HERALD_REQUIRE_TINYPROXY") == "1" {
			t.Fatal("the egress proxy tests need tinyproxy (apt-get install tinyproxy) (HERALD_REQUIRE_TINYPROXY=1)")
		}
		t.Skip("the egress proxy tests need tinyproxy (apt-get install tinyproxy)")
	}
	addr := heraldtest.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	conf := filepath.Join(t.TempDir(), "tinyproxy.conf")
	err = os.WriteFile(conf, []byte("Port "+port+"\nListen 127.0.0.1\nTimeout 30\nLogLevel Info\nMaxClients 200\n"+
		"Allow 127.0.0.1\nBasicAuth herald proxy-password\n"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	p := &tinyproxy{t: t, bin: bin, conf: conf, Addr: addr}
	p.Start()
	t.Cleanup(p.Stop)
	return p
}

// Start starts the proxy and waits until it accepts connections.
func (p *tinyproxy) Start() {
	p.t.Helper()
	p.cmd = exec.Command(p.bin, "-d", "-c", p.conf)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("start tinyproxy: %v", err)
	}
	done := make(chan struct{})
	p.done = done
	go func() { p.cmd.Wait(); close(done) }()
	if !heraldtest.Eventually(30*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", p.Addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		p.t.Fatalf("tinyproxy does not listen on %s:\n%s", p.Addr, p.out.String())
	}
}

// Stop stops the proxy and waits until it has exited.
func (p *tinyproxy) Stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Kill()
	<-p.done
	p.cmd = nil
}

func TestEgressProxy_EveryRequestGoesThroughTinyproxyAndItsFailuresConsumeNothing(t *testing.T) {
	t.Parallel()
	proxy := startTinyproxy(t)
	var via atomic.Int64
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("Via"), "tinyproxy") {
			via.Add(1)
		}
	})
	private := heraldtest.NewReceiver(t, nil)
	_, rcPort, _ := net.SplitHostPort(strings.TrimPrefix(rc.URL, "http://"))
	s := heraldtest.Start(t, func(c *server.Config) {
		// Private destinations are refused, but for the receiver; the
		// proxy (on loopback) is allowed because it is the proxy.
		c.AllowPrivateDestinations = false
		c.AllowDestinations = "127.0.0.1:" + rcPort
		c.EgressProxy = "http://herald:proxy-password@" + proxy.Addr
	})
	createEventTypes(t, s, "egress.sent", "egress.private")
	retry := map[string]any{"maxAttempts": 2, "initialDelay": "100ms", "backoffMultiplier": 1, "maxDelay": "100ms"}
	epID, _ := s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL, "eventTypes": []string{"egress.sent"}, "retryPolicy": retry})

	first := s.WaitDelivery(s.Token, s.Publish(s.Token, "egress.sent", map[string]any{}), 30*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })
	if via.Load() != 1 {
		t.Fatalf("the receiver got %d requests through tinyproxy, want 1 (delivery %+v)", via.Load(), first)
	}

	// A private destination stays refused through the proxy: at save, or,
	// for a name that resolves to one, when sending.
	_, privPort, _ := net.SplitHostPort(strings.TrimPrefix(private.URL, "http://"))
	r := s.Do(s.Token, `mutation($in: CreateEndpointInput!) { createEndpoint(input: $in) { endpoint { id } } }`,
		map[string]any{"in": map[string]any{"name": "private", "url": "http://localhost:" + privPort, "eventTypes": []string{"egress.private"}, "retryPolicy": retry}})
	if r.Code() == "" {
		d := s.WaitDelivery(s.Token, s.Publish(s.Token, "egress.private", map[string]any{}), 30*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "FAILED" })
		if d.LastError == nil || strings.Contains(*d.LastError, "egress proxy") {
			t.Errorf("private destination: error %q, want the destination policy's refusal", deref(d.LastError))
		}
	} else if r.Code() != "BAD_USER_INPUT" {
		t.Errorf("private destination: %s %s", r.Code(), r.Reason())
	}
	if n := len(private.Requests()); n != 0 {
		t.Errorf("the private destination got %d requests through the proxy", n)
	}

	// The proxy stops: attempts fail as proxy errors, more of them than the
	// retry policy allows, without using any or blaming the endpoint.
	proxy.Stop()
	const n = 3
	events := make([]string, n)
	for i := range events {
		events[i] = s.Publish(s.Token, "egress.sent", map[string]any{"i": i})
	}
	for _, ev := range events {
		d := s.WaitDelivery(s.Token, ev, 60*time.Second, func(d heraldtest.Delivery) bool { return len(d.Attempts.Edges) >= 3 })
		if d.Status != "RETRYING" || d.AttemptCount != 0 {
			t.Errorf("delivery %s with the proxy down: status %s, %d attempts used; want RETRYING, 0", d.ID, d.Status, d.AttemptCount)
		}
		for _, a := range d.Attempts.Edges {
			if a.Node.ErrorMessage == nil || !strings.Contains(*a.Node.ErrorMessage, "egress proxy") {
				t.Errorf("attempt %s: error %q, want the egress proxy's", a.Node.ID, deref(a.Node.ErrorMessage))
			}
		}
	}
	var ep struct {
		Node struct {
			IsActive            bool
			ConsecutiveFailures int
		}
	}
	s.Do(s.Token, `query($id: ID!) { node(id: $id) { ... on Endpoint { isActive consecutiveFailures } } }`, map[string]any{"id": epID}).Decode(t, &ep)
	if !ep.Node.IsActive || ep.Node.ConsecutiveFailures != 0 {
		t.Errorf("endpoint after proxy failures: %+v, want active with no failures", ep.Node)
	}
	failures := 0.0
	for _, m := range s.Metrics()["herald_egress_proxy_failures_total"].GetMetric() {
		failures += m.GetCounter().GetValue()
	}
	if failures < n {
		t.Errorf("herald_egress_proxy_failures_total = %v, want at least %d", failures, n)
	}

	// The proxy comes back: everything is delivered, through it.
	proxy.Start()
	for _, ev := range events {
		s.WaitDelivery(s.Token, ev, 60*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })
	}
	if via.Load() != 1+n || len(rc.Requests()) != 1+n {
		t.Errorf("the receiver got %d requests, %d through tinyproxy; want %d through it", len(rc.Requests()), via.Load(), 1+n)
	}
}

func TestEgressProxy_ProxyAuthenticationRequiredIsAProxyError(t *testing.T) {
	t.Parallel()
	proxy := startTinyproxy(t)
	rc := heraldtest.NewReceiver(t, nil)
	// Without credentials tinyproxy answers 407.
	s := heraldtest.Start(t, func(c *server.Config) { c.EgressProxy = "http://" + proxy.Addr })
	s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL,
		"retryPolicy": map[string]any{"maxAttempts": 1, "initialDelay": "100ms", "backoffMultiplier": 1, "maxDelay": "100ms"}})
	d := s.WaitDelivery(s.Token, s.Publish(s.Token, "order.created", map[string]any{}), 30*time.Second, func(d heraldtest.Delivery) bool { return len(d.Attempts.Edges) >= 2 })
	if d.AttemptCount != 0 || d.LastError == nil || !strings.Contains(*d.LastError, "407") {
		t.Errorf("with wrong proxy credentials: %d attempts used, error %q; want none used and the proxy's 407", d.AttemptCount, deref(d.LastError))
	}
	if len(rc.Requests()) != 0 {
		t.Errorf("the receiver was reached with wrong proxy credentials")
	}
}

func TestEgressProxy_HTTPSLeavesThroughACONNECTTunnel(t *testing.T) {
	t.Parallel()
	proxy := startTinyproxy(t)
	rs := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(rs.Close)
	root := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rs.Certificate().Raw}))
	s := heraldtest.Start(t, func(c *server.Config) { c.EgressProxy = "http://herald:proxy-password@" + proxy.Addr })
	s.CreateEndpoint(s.Token, map[string]any{"url": rs.URL, "tls": map[string]any{"caCertificates": root}})
	d := s.WaitDelivery(s.Token, s.Publish(s.Token, "order.created", map[string]any{}), 30*time.Second, func(d heraldtest.Delivery) bool { return d.Status != "PENDING" })
	if d.Status != "SUCCEEDED" {
		t.Fatalf("https through the proxy: %s %q", d.Status, deref(d.LastError))
	}
	if want := "CONNECT " + strings.TrimPrefix(rs.URL, "https://"); !strings.Contains(proxy.out.String(), want) {
		t.Errorf("tinyproxy's log has no %q:\n%s", want, proxy.out.String())
	}
}

func TestSecrets_NotInAPostgreSQLDump(t *testing.T) {
	t.Parallel()
	dsn := pgtest.New(t)
	pgDump, err := pgcluster.Tool("pg_dump")
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	s := heraldtest.Start(t, func(c *server.Config) { c.DB = dsn })
	rc := heraldtest.NewReceiver(t, nil)
	secrets := endpointsWithEverySecret(t, s, rc.URL)
	out, err := exec.Command(pgDump, "--data-only", "--dbname", dsn).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	if !bytes.Contains(out, []byte("hse1:test:")) {
		t.Fatalf("the dump holds no sealed value: is it of the right database?\n%.2000s", out)
	}
	for _, v := range secrets {
		if bytes.Contains(out, []byte(v)) {
			t.Errorf("pg_dump shows the secret %q", v)
		}
	}
}

func TestSecrets_RowsAnOlderHeraldStoredInTheClearAreEncryptedAtStart(t *testing.T) {
	t.Parallel()
	const token = "plain-bearer-token-of-an-older-herald"
	rc := heraldtest.NewReceiver(t, nil)
	s := heraldtest.Start(t)
	id, signing := s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL, "auth": map[string]any{"type": "BEARER", "token": "placeholder"}})
	// The row as a Herald without encryption stored it.
	_, err := s.Store().Write.Exec(`UPDATE endpoints SET secret = ?, auth = ?, secrets_key = '' WHERE id = ?`,
		signing, `{"type":"BEARER","token":"`+token+`"}`, id)
	if err != nil {
		t.Fatal(err)
	}
	s = s.Restart()
	var secretCol, keyCol string
	if err := s.Store().Read.QueryRow(`SELECT secret, secrets_key FROM endpoints WHERE id = ?`, id).Scan(&secretCol, &keyCol); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secretCol, "hse1:") || keyCol == "" {
		t.Fatalf("after a start the row holds secret %.12q… under key %q, want it sealed", secretCol, keyCol)
	}
	if found := findIn(t, []string{token, strings.TrimPrefix(signing, "whsec_")}, s.DBPath, s.DBPath+"-wal"); len(found) > 0 {
		t.Errorf("the plaintext is still in the files: %v", found)
	}
	s.Publish(s.Token, "order.created", map[string]any{})
	r := rc.WaitRequests(t, 1, 30*time.Second)[0]
	if r.Header.Get("Authorization") != "Bearer "+token {
		t.Errorf("Authorization = %q, want the credential stored before", r.Header.Get("Authorization"))
	}
}
