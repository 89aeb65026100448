package secret

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestRedactAttr_HidesSecretsInLogs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: RedactAttr}))
	log.Info("endpoint", "password", "hunter2", "client_secret", "cs_1", "auth.token", "t0k",
		"key_id", "k1", "note", "signed with whsec_abcdef and more", "err", errors.New(`bad secret "whsk_zzz"`),
		"endpoint_id", "ep_1", "empty_token", "")
	out := buf.String()
	for _, leak := range []string{"hunter2", "cs_1", "t0k", "whsec_abcdef", "whsk_zzz"} {
		if strings.Contains(out, leak) {
			t.Errorf("log line shows %q: %s", leak, out)
		}
	}
	for _, keep := range []string{`"key_id":"k1"`, `"endpoint_id":"ep_1"`, "signed with [REDACTED] and more", `"empty_token":""`} {
		if !strings.Contains(out, keep) {
			t.Errorf("log line lost %s: %s", keep, out)
		}
	}
}
