package deploy_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
)

// unit parses a systemd unit file into section → key → values.
func unit(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.ContainsAny(k, " \t") {
				t.Fatalf("%s:%d: not a key=value line in a section: %q", path, n, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

// TestSystemd_UnitIsValidAndHardened checks deploy/systemd/herald.service:
// systemd-analyze verify accepts it without a word (with ExecStart pointed
// at a herald binary built here), systemd-analyze security rates its
// exposure OK, and it runs herald serve with its state in /var/lib/herald
// under a user of its own, stopping it later than Herald's shutdown grace.
func TestSystemd_UnitIsValidAndHardened(t *testing.T) {
	path := filepath.Join("systemd", "herald.service")
	u := unit(t, path)
	svc := u["Service"]
	want := map[string]string{
		"ExecStart":               "/usr/local/bin/herald serve",
		"DynamicUser":             "yes",
		"StateDirectory":          "herald",
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"PrivateDevices":          "yes",
		"CapabilityBoundingSet":   "",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
		"SystemCallArchitectures": "native",
		"MemoryDenyWriteExecute":  "yes",
		"RestrictSUIDSGID":        "yes",
		"ProtectKernelTunables":   "yes",
		"ProtectControlGroups":    "yes",
		"SystemCallErrorNumber":   "EPERM",
		"Restart":                 "on-failure",
		"WorkingDirectory":        "/var/lib/herald",
		"EnvironmentFile":         "-/etc/herald/herald.env",
		"KillSignal":              "SIGTERM",
		"UMask":                   "0077",
		"StateDirectoryMode":      "0700",
		"LockPersonality":         "yes",
		"RestrictNamespaces":      "yes",
		"ProtectKernelModules":    "yes",
		"ProtectClock":            "yes",
		"ProtectHostname":         "yes",
		"RestrictRealtime":        "yes",
		"SystemCallFilter":        "@system-service",
		"ProtectKernelLogs":       "yes",
		"PrivateUsers":            "yes",
		"Type":                    "exec",
		"AmbientCapabilities":     "",
		"RemoveIPC":               "yes",
		"ProtectProc":             "invisible",
		"ProcSubset":              "pid",
		"LimitNOFILE":             "65536",
		"RestartSec":              "2s",
		"TimeoutStopSec":          "45s",
	}
	for k, v := range want {
		if vals, ok := svc[k]; !ok || vals[0] != v {
			t.Errorf("[Service] %s = %q, want %q", k, vals, v)
		}
	}
	env := map[string]string{}
	for _, e := range svc["Environment"] {
		k, v, _ := strings.Cut(e, "=")
		env[k] = v
	}
	if env["HERALD_DB"] != "/var/lib/herald/herald.db" {
		t.Errorf("HERALD_DB = %q, want the state directory's database", env["HERALD_DB"])
	}
	grace, err := time.ParseDuration(env["HERALD_SHUTDOWN_GRACE"])
	stop, err2 := time.ParseDuration(svc["TimeoutStopSec"][0])
	if err != nil || err2 != nil || stop <= grace {
		t.Errorf("TimeoutStopSec %s must be longer than HERALD_SHUTDOWN_GRACE %s", svc["TimeoutStopSec"], env["HERALD_SHUTDOWN_GRACE"])
	}
	if u["Install"]["WantedBy"][0] != "multi-user.target" {
		t.Errorf("[Install] WantedBy = %q", u["Install"]["WantedBy"])
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("HERALD_REQUIRE_SYSTEMD") == "1" {
			t.Fatal("systemd-analyze not found (HERALD_REQUIRE_SYSTEMD=1): install systemd")
		}
		t.Skip("systemd-analyze not found: the unit was only parsed")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bin := heraldtest.Binary(t)
	copyPath := filepath.Join(t.TempDir(), "herald.service")
	if err := os.WriteFile(copyPath, bytes.ReplaceAll(raw, []byte("ExecStart=/usr/local/bin/herald"), []byte("ExecStart="+bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", copyPath).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(analyze, "security", "--offline=yes", "--threshold=20", copyPath).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security rates the unit's exposure above 2.0: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	t.Logf("systemd-analyze security: %s", lines[len(lines)-1])
}
