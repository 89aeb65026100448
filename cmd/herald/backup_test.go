package main

import (
	"database/sql"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
)

// TestBackup_WhilePublishingThenRestore takes a backup with `herald backup`
// while 10,000 events are being published and delivered. The backup opens,
// passes PRAGMA integrity_check and holds every event whose publish
// returned before the backup began. Restored in place of the database (as
// docs/backups.md says), it gets every one of those events delivered: the
// deliveries it holds unfinished are sent again, and the duplicates this
// causes are counted and reported.
func TestBackup_WhilePublishingThenRestore(t *testing.T) {
	t.Parallel()
	bin := heraldtest.Binary(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "herald.db")
	backup := filepath.Join(dir, "backup.db")
	p := heraldtest.StartProcess(t, bin, "--db", path)
	token := p.Token
	rc := newCounter(t, 0)
	p.GraphQL(t, token, `mutation($u: String!) { createEndpoint(input: {name: "all", url: $u, eventTypes: ["*"]}) { secret } }`,
		map[string]any{"u": rc.URL})

	const total, perBatch, workers = 10_000, 25, 4
	var (
		mu          sync.Mutex
		accepted    []string
		before      []string // returned before the backup began
		backupStart time.Time
		slowest     time.Duration // the slowest publish call that overlapped the backup
		backupEnd   time.Time
	)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for batch := w; batch < total/perBatch; batch += workers {
				in := make([]map[string]any, perBatch)
				for i := range in {
					in[i] = map[string]any{"eventType": "order.created", "payload": map[string]any{"batch": batch, "i": i}}
				}
				start := time.Now()
				data, errs, err := p.Do(token, `mutation($in: [PublishEventInput!]!) { publishEvents(input: $in) { id } }`, map[string]any{"in": in})
				if err != nil || errs != nil {
					t.Errorf("publish batch %d: %v %s", batch, err, errs)
					return
				}
				var out struct{ PublishEvents []struct{ ID string } }
				decode(t, data, &out)
				mu.Lock()
				for _, e := range out.PublishEvents {
					accepted = append(accepted, e.ID)
				}
				end := time.Now()
				if !backupStart.IsZero() && start.Before(backupEndOr(backupEnd, end)) && end.After(backupStart) {
					slowest = max(slowest, end.Sub(start))
				}
				mu.Unlock()
			}
		}()
	}
	if !heraldtest.Eventually(120*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(accepted) >= total/2 || t.Failed()
	}) {
		t.Fatal("half the events were not published within 2 minutes")
	}
	mu.Lock()
	before = slices.Clone(accepted)
	backupStart = time.Now()
	mu.Unlock()
	out, err := exec.Command(bin, "backup", "--db", path, "--out", backup).CombinedOutput()
	mu.Lock()
	backupEnd = time.Now()
	mu.Unlock()
	if err != nil {
		t.Fatalf("herald backup: %v\n%s", err, out)
	}
	t.Logf("%s", strings.TrimSpace(string(out)))
	wg.Wait()
	if t.Failed() {
		return
	}
	if !heraldtest.Eventually(180*time.Second, func() bool { return rc.missing(accepted) == 0 }) {
		t.Fatalf("%d of %d events were not delivered", rc.missing(accepted), len(accepted))
	}
	t.Logf("%d events published, %d before the backup began; the backup took %v; the slowest publish call of %d events overlapping it took %v",
		len(accepted), len(before), backupEnd.Sub(backupStart).Round(time.Millisecond), perBatch, slowest.Round(time.Millisecond))

	// The backup, on its own.
	b, err := sql.Open("sqlite3", "file:"+backup+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	var check string
	if err := b.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check of the backup: %q, %v", check, err)
	}
	inBackup := make(map[string]bool)
	rows, err := b.Query("SELECT e.id FROM events e JOIN deliveries d ON d.event_id = e.id")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		inBackup[id] = true
	}
	rows.Close()
	var unfinished int
	if err := b.QueryRow("SELECT count(*) FROM deliveries WHERE next_attempt_at IS NOT NULL").Scan(&unfinished); err != nil {
		t.Fatal(err)
	}
	b.Close()
	var lost []string
	for _, id := range before {
		if !inBackup[id] {
			lost = append(lost, id)
		}
	}
	if len(lost) > 0 {
		t.Fatalf("%d events published before the backup began are not in it (with their delivery), e.g. %s", len(lost), lost[0])
	}

	// Restore: stop herald, drop the database and its WAL, copy the
	// backup in its place, start herald again.
	p.Stop(30 * time.Second)
	seenBefore := rc.snapshot()
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	copyFile(t, backup, path)
	heraldtest.StartProcess(t, bin, "--db", path)
	r, err := sql.Open("sqlite3", "file:"+path+"?_query_only=true")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	left := -1
	if !heraldtest.Eventually(120*time.Second, func() bool {
		_ = r.QueryRow("SELECT count(*) FROM deliveries WHERE next_attempt_at IS NOT NULL").Scan(&left)
		return left == 0
	}) {
		t.Fatalf("%d deliveries of the restored database still unfinished after 2 minutes", left)
	}
	var failed int
	if err := r.QueryRow("SELECT count(*) FROM deliveries WHERE status <> 'SUCCEEDED'").Scan(&failed); err != nil || failed != 0 {
		t.Fatalf("%d deliveries of the restored database did not succeed (%v)", failed, err)
	}
	if n := rc.missing(before); n != 0 {
		t.Fatalf("%d events published before the backup never arrived", n)
	}
	seenAfter := rc.snapshot()
	resent, dups := 0, 0
	for id, n := range seenAfter {
		if extra := n - seenBefore[id]; extra > 0 {
			resent++
			if seenBefore[id] > 0 {
				dups += extra
			}
		}
	}
	t.Logf("restore: the backup held %d of %d deliveries unfinished; after the restore %d events were sent again, %d of them duplicates of deliveries made before the restore (at least once: receivers deduplicate by webhook-id)",
		unfinished, len(inBackup), resent, dups)
	if resent != unfinished {
		t.Errorf("%d events were sent after the restore, want the %d deliveries the backup held unfinished", resent, unfinished)
	}
}

func backupEndOr(end, now time.Time) time.Time {
	if end.IsZero() {
		return now
	}
	return end
}

func (c *counter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]int, len(c.seen))
	for id, n := range c.seen {
		m[id] = n
	}
	return m
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
