package deploy_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// TestCompose_TwoReplicasOnPostgres loads deploy/compose.yaml with the
// compose-spec library (which validates it against the Compose
// specification's schema) and checks the replicated setup: two Herald
// replicas built from the repository's Dockerfile, on distinct loopback
// ports, sharing the PostgreSQL service once it is healthy, hardened, and
// given longer than Herald's shutdown grace to stop.
func TestCompose_TwoReplicasOnPostgres(t *testing.T) {
	opts, err := cli.NewProjectOptions([]string{"compose.yaml"},
		cli.WithWorkingDirectory("."), cli.WithEnv(nil), cli.WithResolvedPaths(true))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("load compose.yaml: %v", err)
	}
	if names := slices.Sorted(func(yield func(string) bool) {
		for n := range p.Services {
			if !yield(n) {
				return
			}
		}
	}); !slices.Equal(names, []string{"herald-1", "herald-2", "postgres"}) {
		t.Fatalf("services %v, want herald-1, herald-2 and postgres", names)
	}
	pg := p.Services["postgres"]
	if pg.HealthCheck == nil || len(pg.HealthCheck.Test) == 0 || len(pg.Volumes) == 0 {
		t.Errorf("postgres: healthcheck %v, volumes %v: want both", pg.HealthCheck, pg.Volumes)
	}
	root, _ := filepath.Abs("..")
	ports := map[string]bool{}
	for _, name := range []string{"herald-1", "herald-2"} {
		s := p.Services[name]
		if s.Build == nil || s.Build.Context != root || s.Build.Dockerfile != "Dockerfile" {
			t.Errorf("%s: build %+v, want the repository's Dockerfile", name, s.Build)
		}
		if d, ok := s.DependsOn["postgres"]; !ok || d.Condition != types.ServiceConditionHealthy {
			t.Errorf("%s: depends on %+v, want postgres healthy", name, s.DependsOn)
		}
		dsn := s.Environment["HERALD_DB"]
		if dsn == nil {
			t.Fatalf("%s: no HERALD_DB", name)
		}
		u, err := url.Parse(*dsn)
		if err != nil || u.Scheme != "postgres" || u.Hostname() != "postgres" || u.Path != "/"+*pg.Environment["POSTGRES_DB"] {
			t.Errorf("%s: HERALD_DB %q does not name the postgres service's database", name, *dsn)
		}
		if len(s.Command) > 0 || len(s.Entrypoint) > 0 {
			t.Errorf("%s overrides the image's command: %q %q", name, s.Entrypoint, s.Command)
		}
		if s.User != "" {
			t.Errorf("%s runs as %q instead of the image's user", name, s.User)
		}
		if !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("%s: read-only %v, cap_drop %v, security_opt %v: want a hardened container", name, s.ReadOnly, s.CapDrop, s.SecurityOpt)
		}
		grace, err := time.ParseDuration(*s.Environment["HERALD_SHUTDOWN_GRACE"])
		if err != nil || s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) <= grace {
			t.Errorf("%s: stop grace %v, Herald's shutdown grace %v: the first must be longer", name, s.StopGracePeriod, grace)
		}
		if len(s.Ports) != 1 || s.Ports[0].Target != 8080 || s.Ports[0].HostIP != "127.0.0.1" || ports[s.Ports[0].Published] {
			t.Errorf("%s: ports %+v, want 8080 on a loopback port of its own", name, s.Ports)
		}
		ports[s.Ports[0].Published] = true
	}
	if _, err := os.Stat(filepath.Join(root, "Dockerfile")); err != nil {
		t.Errorf("the replicas build %s: %v", filepath.Join(root, "Dockerfile"), err)
	}
	if !strings.Contains(*p.Services["herald-1"].Environment["HERALD_DB"], "sslmode=disable") {
		t.Errorf("the laptop's PostgreSQL has no TLS: the URL must say sslmode=disable")
	}
}
