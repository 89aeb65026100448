package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/google/pprof/profile"
)

// A stage is a part of a delivery's path through herald. Its frames are
// the functions whose presence anywhere in a CPU sample's stack put the
// sample in that stage; stages are tried in order, so a sample of the
// publisher inserting deliveries is fan-out, not ingest.
type stage struct {
	name   string
	frames *regexp.Regexp
}

var stages = []stage{
	// Fan-out: matching an event to endpoints (filters included) and
	// writing its deliveries.
	{"fanout", regexp.MustCompile(`dispatch\.\(\*\w+Tx\)\.InsertDeliveries|dispatch\.\(\*Engine\)\.(newDeliveries|prepare|snapshotSubs|compileFilters)|herald/filter\.`)},
	// Record: committing attempts and the deliveries' new state.
	{"record", regexp.MustCompile(`dispatch\.\(\*recorder\)`)},
	// Claim: finding due deliveries and handing them to workers.
	{"claim", regexp.MustCompile(`dispatch\.\(\*\w+Driver\)\.(Claim|Due)|dispatch\.\(\*scheduler\)|dispatch\.\(\*window\)|dispatch\.\(\*Engine\)\.(claim|pump)`)},
	// Send: rendering, signing and sending a request, reading its answer.
	{"send", regexp.MustCompile(`dispatch\.\(\*attempt\)|herald/destination|herald/signing|net/http\.\(\*(Transport|persistConn)\)|net/http\.\(\*Client\)`)},
	// Live: the feeds of subscribers.
	{"live", regexp.MustCompile(`herald/bus\.|gorilla/websocket`)},
	// Ingest: the API (HTTP, authentication, GraphQL) and storing events.
	{"ingest", regexp.MustCompile(`herald/server\.|herald/graph|herald/auth\.|99designs/gqlgen|gqlparser|net/http\.\(\*conn\)\.serve|dispatch\.\(\*Engine\)\.(publish|commit|storeGroup|newEvents|runPublisher)|InsertEvents`)},
}

// profiler takes back-to-back one-second CPU profiles of herald processes
// until stopped, and merges them.
type profiler struct {
	stopc chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	profs []*profile.Profile
	errs  []error
}

func startProfiler(fleet []*heraldProc) *profiler {
	p := &profiler{stopc: make(chan struct{})}
	for _, h := range fleet {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for {
				select {
				case <-p.stopc:
					return
				default:
				}
				prof, err := fetchProfile(h.debugURL + "/debug/pprof/profile?seconds=1")
				p.mu.Lock()
				if err != nil {
					p.errs = append(p.errs, err)
				} else {
					p.profs = append(p.profs, prof)
				}
				p.mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	return p
}

func fetchProfile(url string) (*profile.Profile, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return profile.Parse(resp.Body)
}

// stop waits for the profiles in progress and returns their merge.
func (p *profiler) stop() (*profile.Profile, error) {
	close(p.stopc)
	p.wg.Wait()
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	if len(p.profs) == 0 {
		return nil, errors.New("no profile taken")
	}
	merged, err := profile.Merge(p.profs)
	if err != nil {
		return nil, fmt.Errorf("merge profiles: %w", err)
	}
	return merged, nil
}

// stageShares splits a CPU profile's time by stage: each stage's share of
// the samples (adding up to 1 with "runtime" and "other").
func stageShares(prof *profile.Profile) map[string]float64 {
	vi := len(prof.SampleType) - 1 // cpu nanoseconds
	for i, st := range prof.SampleType {
		if st.Type == "cpu" {
			vi = i
		}
	}
	by := map[string]int64{}
	var total int64
	for _, s := range prof.Sample {
		v := s.Value[vi]
		total += v
		by[stageOf(s)] += v
	}
	shares := map[string]float64{}
	if total == 0 {
		return shares
	}
	for name, v := range by {
		shares[name] = float64(v) / float64(total)
	}
	return shares
}

// stageOf returns the stage of a sample: the first whose frames it holds;
// else "runtime" if the Go runtime alone is on the stack (garbage
// collection, scheduling), else "other".
func stageOf(s *profile.Sample) string {
	for _, st := range stages {
		for _, loc := range s.Location {
			for _, line := range loc.Line {
				if line.Function != nil && st.frames.MatchString(line.Function.Name) {
					return st.name
				}
			}
		}
	}
	for _, loc := range s.Location {
		for _, line := range loc.Line {
			if line.Function != nil && !strings.HasPrefix(line.Function.Name, "runtime.") {
				return "other"
			}
		}
	}
	return "runtime"
}

func writeProfile(path string, prof *profile.Profile) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := prof.Write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
