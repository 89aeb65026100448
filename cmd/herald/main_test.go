package main

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/signing"
)

func TestParseFlags_FlagsWinOverEnvironment(t *testing.T) {
	env := map[string]string{
		"HERALD_DB":             "/from/env.db",
		"HERALD_ALLOW_HTTP":     "true",
		"HERALD_WORKERS":        "7",
		"HERALD_LEASE":          "2m",
		"HERALD_CORS_ORIGINS":   "https://a.example, https://b.example",
		"HERALD_DISABLE_AFTER":  "5",
		"HERALD_SHUTDOWN_GRACE": "3s",
		"HERALD_RETENTION":      "168h",
	}
	getenv := func(k string) string { return env[k] }
	o, err := parseFlags([]string{"--db", "/from/flag.db", "--workers", "9"}, getenv, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	c := o.cfg
	if c.DB != "/from/flag.db" || c.Workers != 9 {
		t.Errorf("flags did not win: db %q workers %d", c.DB, c.Workers)
	}
	if !c.AllowHTTP || c.Lease != 2*time.Minute || c.DisableAfter != 5 || c.ShutdownGrace != 3*time.Second || c.Retention != 7*24*time.Hour {
		t.Errorf("environment not applied: %+v", c)
	}
	if len(c.CORSOrigins) != 2 || c.CORSOrigins[1] != "https://b.example" {
		t.Errorf("cors origins = %q", c.CORSOrigins)
	}
	if c.AllowPrivateDestinations {
		t.Errorf("private destinations allowed without --dev or the flag")
	}
}

func TestParseFlags_DBTakesAPostgresURL(t *testing.T) {
	const url = "postgres://herald:secret@db.internal:5432/herald?sslmode=verify-full"
	env := map[string]string{"HERALD_DB": url, "HERALD_DB_MAX_CONNS": "40"}
	o, err := parseFlags(nil, func(k string) string { return env[k] }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.cfg.DB != url || o.cfg.DBMaxConns != 40 {
		t.Fatalf("db %q max conns %d, want the URL from HERALD_DB and 40", o.cfg.DB, o.cfg.DBMaxConns)
	}
	o, err = parseFlags([]string{"--db", "postgresql://h/herald", "--db-max-conns", "8"}, func(k string) string { return env[k] }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.cfg.DB != "postgresql://h/herald" || o.cfg.DBMaxConns != 8 {
		t.Fatalf("flags did not win: db %q max conns %d", o.cfg.DB, o.cfg.DBMaxConns)
	}
}

func TestServe_UnreachablePostgresIsAClearErrorWithoutThePassword(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"serve", "--db", "postgres://herald:secret@127.0.0.1:1/herald"}, &bytes.Buffer{}, &stderr)
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("serve on an unreachable PostgreSQL: %v, want an error naming the server", err)
	}
	if strings.Contains(err.Error()+stderr.String(), "secret") {
		t.Errorf("the password was printed: %v %s", err, stderr.String())
	}
}

func TestParseFlags_DevAllowsLocalDestinations(t *testing.T) {
	o, err := parseFlags([]string{"--dev"}, func(string) string { return "" }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !o.cfg.AllowHTTP || !o.cfg.AllowPrivateDestinations || o.logFormat != "text" {
		t.Fatalf("--dev gave %+v, log format %q", o.cfg, o.logFormat)
	}
	if o.cfg.Addr != ":8080" || o.cfg.DB != "herald.db" || o.cfg.Retention != 30*24*time.Hour || o.cfg.DBMaxConns != 0 {
		t.Fatalf("defaults: addr %q db %q retention %s db max conns %d", o.cfg.Addr, o.cfg.DB, o.cfg.Retention, o.cfg.DBMaxConns)
	}
}

func TestParseFlags_RejectsBadValues(t *testing.T) {
	cases := []struct {
		args []string
		env  map[string]string
	}{
		{env: map[string]string{"HERALD_WORKERS": "many"}},
		{env: map[string]string{"HERALD_ALLOW_HTTP": "perhaps"}},
		{env: map[string]string{"HERALD_LEASE": "forever"}},
		{args: []string{"--workers", "x"}},
		{args: []string{"--retention", "-1h"}},
		{args: []string{"--db-max-conns", "-1"}},
		{args: []string{"stray"}},
	}
	for _, c := range cases {
		if _, err := parseFlags(c.args, func(k string) string { return c.env[k] }, &bytes.Buffer{}); err == nil {
			t.Errorf("parseFlags(%q, %v) succeeded, want an error", c.args, c.env)
		}
	}
}

// runUntil runs the command until its output matches re, then stops it.
func runUntil(t *testing.T, args []string, re *regexp.Regexp) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut heraldtest.SyncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, &out, &errOut) }()
	ok := heraldtest.Eventually(30*time.Second, func() bool { return re.MatchString(out.String() + errOut.String()) })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("herald %v: %v\n%s", args, err, errOut.String())
	}
	if !ok {
		t.Fatalf("herald %v never printed %v:\n%s%s", args, re, out.String(), errOut.String())
	}
	return out.String(), errOut.String()
}

func TestServe_PrintsTheFirstKeyOnlyOnce(t *testing.T) {
	db := filepath.Join(t.TempDir(), "herald.db")
	args := []string{"serve", "--db", db, "--addr", "127.0.0.1:0", "--log-format", "text"}
	out, _ := runUntil(t, args, regexp.MustCompile(`herald listening`))
	token := regexp.MustCompile(`hrld_[A-Za-z0-9_-]{43}`).FindString(out)
	if token == "" || !strings.Contains(out, `"Authorization": "Bearer `+token+`"`) {
		t.Fatalf("first start did not print the key with a GraphiQL hint:\n%s", out)
	}
	for _, want := range []string{"GraphiQL", "/console", "HERALD_API_KEY=" + token + " herald portal-link", "herald login --url"} {
		if !strings.Contains(out, want) {
			t.Errorf("the first start's message does not say %q:\n%s", want, out)
		}
	}
	out, _ = runUntil(t, args, regexp.MustCompile(`herald listening`))
	if strings.Contains(out, "hrld_") {
		t.Fatalf("second start printed a key again:\n%s", out)
	}
}

func TestReceive_VerifiesSignatures(t *testing.T) {
	secret, err := signing.NewSecret(nil)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := signing.DecodeSecret(secret)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out heraldtest.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"receive", "--addr", "127.0.0.1:0", "--secret", secret}, &out, &bytes.Buffer{})
	}()
	addrRE := regexp.MustCompile(`http://(127\.0\.0\.1:\d+)/`)
	if !heraldtest.Eventually(10*time.Second, func() bool { return addrRE.MatchString(out.String()) }) {
		t.Fatalf("receiver did not start: %s", out.String())
	}
	url := "http://" + addrRE.FindStringSubmatch(out.String())[1] + "/hook"
	body := []byte(`{"id":"evt_1","type":"order.created","data":{}}`)
	post := func(sign bool) int {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		ts := time.Now().Unix()
		req.Header.Set("Webhook-Id", "evt_1")
		req.Header.Set("Webhook-Timestamp", strconv.FormatInt(ts, 10))
		if sign {
			req.Header.Set("Webhook-Signature", string(signing.NewSigner(key).AppendStandard(nil, "evt_1", ts, body)))
		} else {
			req.Header.Set("Webhook-Signature", "v1,AAAA")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(true); code != http.StatusOK {
		t.Errorf("signed delivery answered %d, want 200", code)
	}
	if code := post(false); code != http.StatusUnauthorized {
		t.Errorf("forged delivery answered %d, want 401", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "signature:  valid") || !strings.Contains(out.String(), "INVALID") {
		t.Fatalf("output does not report both verdicts:\n%s", out.String())
	}
}

func TestParseFlags_MetricsAreOnUnlessTurnedOff(t *testing.T) {
	none := func(string) string { return "" }
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		disabled bool
		addr     string
		wantErr  bool
	}{
		{"default", nil, nil, false, "", false},
		{"flag off", []string{"--metrics=false"}, nil, true, "", false},
		{"environment off", nil, map[string]string{"HERALD_METRICS": "false"}, true, "", false},
		{"flag wins", []string{"--metrics=true"}, map[string]string{"HERALD_METRICS": "false"}, false, "", false},
		{"own listener", []string{"--metrics-addr", "127.0.0.1:9464"}, nil, false, "127.0.0.1:9464", false},
		{"listener for nothing", []string{"--metrics=false", "--metrics-addr", "127.0.0.1:9464"}, nil, false, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := none
			if tt.env != nil {
				getenv = func(k string) string { return tt.env[k] }
			}
			o, err := parseFlags(tt.args, getenv, &bytes.Buffer{})
			if tt.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.cfg.DisableMetrics != tt.disabled || o.cfg.MetricsAddr != tt.addr {
				t.Fatalf("metrics off %v on %q, want off %v on %q", o.cfg.DisableMetrics, o.cfg.MetricsAddr, tt.disabled, tt.addr)
			}
		})
	}
}
