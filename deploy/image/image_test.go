// Package image tests Herald's container image (the Dockerfile at the
// repository root). Containers cannot run where CI does, so the test builds
// the image with `make image`, takes it apart (saves it, reads its
// configuration, unpacks its layers) and runs the unpacked entrypoint the
// way a runtime would: chrooted into the image's filesystem, as its user,
// with its command, environment and working directory. Where a container
// runtime works, `make image-test` runs the real container
// (container-test.sh).
package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// engine returns podman or docker, or skips the test without either;
// HERALD_REQUIRE_PODMAN=1 (CI) makes that a failure.
func engine(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"podman", "docker"} {
		if p, err := exec.LookPath(name); err == nil {
			if name == "docker" && exec.Command(p, "info").Run() != nil {
				continue // the client without an engine
			}
			return p
		}
	}
	msg := "neither podman nor docker is installed (Debian package podman)"
	if os.Getenv("HERALD_REQUIRE_PODMAN") == "1" {
		t.Fatal(msg + " (HERALD_REQUIRE_PODMAN=1)")
	}
	t.Skip(msg)
	return ""
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// build runs `make image` and returns the image's name.
func build(t *testing.T, eng string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the container image")
	}
	root := repoRoot(t)
	image := fmt.Sprintf("localhost/herald-imagetest:%d", os.Getpid())
	args := []string{"-C", root, "--no-print-directory", "image", "ENGINE=" + eng, "IMAGE=" + image, "VERSION=imagetest"}
	// The build stage's base: CI makes one from Debian's packages
	// (go-builder.sh), since no image registry can be reached there.
	if g := os.Getenv("HERALD_IMAGE_GO_IMAGE"); g != "" {
		args = append(args, "GO_IMAGE="+g)
	}
	flags, ok := os.LookupEnv("HERALD_IMAGE_BUILD_FLAGS")
	if !ok && filepath.Base(eng) == "podman" {
		flags = "--isolation=chroot" // builds where containers cannot run
	}
	args = append(args, "IMAGE_BUILD_FLAGS="+flags)
	cmd := exec.Command("make", args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make image: %v\n%s", err, lastLines(string(out), 40))
	}
	t.Cleanup(func() { _ = exec.Command(eng, "rmi", "-f", image).Run() })
	return image
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// imageConfig is the part of an OCI image configuration the test reads.
type imageConfig struct {
	Config struct {
		User         string
		Env          []string
		Entrypoint   []string
		Cmd          []string
		WorkingDir   string
		ExposedPorts map[string]struct{}
		Volumes      map[string]struct{}
		Labels       map[string]string
	} `json:"config"`
}

// saved is an image taken apart: its configuration and its layers, each a
// tar (possibly gzipped).
type saved struct {
	config imageConfig
	layers [][]byte
}

// save writes the image to an archive and reads it back: an OCI archive
// (podman) or a docker archive (docker).
func save(t *testing.T, eng, image string) *saved {
	t.Helper()
	archive := filepath.Join(t.TempDir(), "image.tar")
	args := []string{"save", "-o", archive, image}
	if filepath.Base(eng) == "podman" {
		args = []string{"save", "--format", "oci-archive", "-o", archive, image}
	}
	if out, err := exec.Command(eng, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s save: %v\n%s", eng, err, out)
	}
	files := map[string][]byte{}
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[path.Clean(h.Name)] = b
		}
	}
	s := &saved{}
	blob := func(digest string) []byte {
		b, ok := files["blobs/"+strings.Replace(digest, ":", "/", 1)]
		if !ok {
			t.Fatalf("the archive has no blob %s", digest)
		}
		return b
	}
	decode := func(b []byte, v any) {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
	}
	if idx, ok := files["index.json"]; ok { // OCI layout
		var index struct{ Manifests []struct{ Digest string } }
		decode(idx, &index)
		if len(index.Manifests) != 1 {
			t.Fatalf("the archive holds %d manifests, want 1", len(index.Manifests))
		}
		var m struct {
			Config struct{ Digest string }
			Layers []struct{ Digest string }
		}
		decode(blob(index.Manifests[0].Digest), &m)
		decode(blob(m.Config.Digest), &s.config)
		for _, l := range m.Layers {
			s.layers = append(s.layers, blob(l.Digest))
		}
		return s
	}
	var m []struct {
		Config string
		Layers []string
	}
	decode(files["manifest.json"], &m) // docker archive
	if len(m) != 1 {
		t.Fatalf("the archive holds %d images, want 1", len(m))
	}
	decode(files[m[0].Config], &s.config)
	for _, l := range m[0].Layers {
		s.layers = append(s.layers, files[l])
	}
	return s
}

// entry is a file of the unpacked image.
type entry struct {
	mode     fs.FileMode
	uid, gid int
}

// unpack applies the layers in order into dir, as a runtime does
// (whiteouts included), and returns what it holds.
func (s *saved) unpack(t *testing.T, dir string) map[string]entry {
	t.Helper()
	entries := map[string]entry{}
	for i, layer := range s.layers {
		var r io.Reader = bytes.NewReader(layer)
		if bytes.HasPrefix(layer, []byte{0x1f, 0x8b}) {
			gz, err := gzip.NewReader(r)
			if err != nil {
				t.Fatal(err)
			}
			r = gz
		}
		tr := tar.NewReader(r)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("layer %d: %v", i, err)
			}
			name := path.Clean(strings.TrimPrefix(h.Name, "./"))
			if name == "." || name == "/" {
				continue
			}
			if strings.HasPrefix(name, "../") || path.IsAbs(name) {
				t.Fatalf("layer %d: unsafe path %q", i, h.Name)
			}
			target := filepath.Join(dir, filepath.FromSlash(name))
			if base := path.Base(name); strings.HasPrefix(base, ".wh.") {
				gone := path.Join(path.Dir(name), strings.TrimPrefix(base, ".wh."))
				os.RemoveAll(filepath.Join(dir, filepath.FromSlash(gone)))
				for k := range entries {
					if k == gone || strings.HasPrefix(k, gone+"/") {
						delete(entries, k)
					}
				}
				continue
			}
			switch h.Typeflag {
			case tar.TypeDir:
				if err := os.MkdirAll(target, 0o755); err != nil {
					t.Fatal(err)
				}
			case tar.TypeReg:
				if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
					t.Fatal(err)
				}
				f, err := os.OpenFile(target, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := io.Copy(f, tr); err != nil {
					t.Fatal(err)
				}
				f.Close()
			case tar.TypeSymlink:
				os.Remove(target)
				if err := os.Symlink(h.Linkname, target); err != nil {
					t.Fatal(err)
				}
			default:
				t.Fatalf("layer %d: %s has unexpected type %c", i, name, h.Typeflag)
			}
			if h.Typeflag != tar.TypeSymlink {
				if err := os.Chmod(target, fs.FileMode(h.Mode)&fs.ModePerm|modeBits(h.Mode)); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Lchown(target, h.Uid, h.Gid); err != nil {
				t.Fatal(err)
			}
			entries[name] = entry{mode: h.FileInfo().Mode(), uid: h.Uid, gid: h.Gid}
		}
	}
	return entries
}

func modeBits(m int64) fs.FileMode {
	var b fs.FileMode
	if m&0o1000 != 0 {
		b |= fs.ModeSticky
	}
	return b
}

// TestImage_TakenApartRunsAsItsUser builds the image and checks what it
// is: its configuration (user 65532, the entrypoint and command, never
// --dev, the volume, the port, the labels) and its files (the static
// binary, CA certificates, a passwd entry, the data directory: nothing
// else, no shell). Then it runs the unpacked entrypoint as the image's
// user, with its command and environment, on a fresh data directory: it
// starts, answers /readyz, delivers a published event to a receiver, and
// exits cleanly on SIGTERM within its shutdown grace.
func TestImage_TakenApartRunsAsItsUser(t *testing.T) {
	eng := engine(t)
	image := build(t, eng)
	s := save(t, eng, image)
	c := s.config.Config

	if c.User != "65532:65532" && c.User != "65532" {
		t.Errorf("user %q, want 65532", c.User)
	}
	if !slices.Equal(c.Entrypoint, []string{"/usr/local/bin/herald"}) || !slices.Equal(c.Cmd, []string{"serve"}) {
		t.Errorf("entrypoint %q, command %q; want /usr/local/bin/herald serve", c.Entrypoint, c.Cmd)
	}
	env := map[string]string{}
	for _, kv := range c.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	for _, arg := range append(slices.Clone(c.Entrypoint), c.Cmd...) {
		if strings.HasPrefix(arg, "--dev") || strings.HasPrefix(arg, "-dev") {
			t.Errorf("the image's command %q runs in development mode", append(c.Entrypoint, c.Cmd...))
		}
	}
	if env["HERALD_DEV"] != "" {
		t.Errorf("the image sets HERALD_DEV=%s", env["HERALD_DEV"])
	}
	if env["HERALD_DB"] != "/var/lib/herald/herald.db" || c.WorkingDir != "/var/lib/herald" {
		t.Errorf("database %q, working directory %q; want both in /var/lib/herald", env["HERALD_DB"], c.WorkingDir)
	}
	if _, ok := c.Volumes["/var/lib/herald"]; !ok || len(c.Volumes) != 1 {
		t.Errorf("volumes %v, want /var/lib/herald", c.Volumes)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok || len(c.ExposedPorts) != 1 {
		t.Errorf("exposed ports %v, want 8080/tcp", c.ExposedPorts)
	}
	rev, _ := exec.Command("git", "-C", repoRoot(t), "rev-parse", "HEAD").Output()
	for label, want := range map[string]string{
		"org.opencontainers.image.source":   "https://github.com/heraldhq/herald",
		"org.opencontainers.image.version":  "imagetest",
		"org.opencontainers.image.revision": strings.TrimSpace(string(rev)),
	} {
		if got := c.Labels[label]; got != want || got == "" {
			t.Errorf("label %s = %q, want %q", label, got, want)
		}
	}

	rootfs := t.TempDir()
	if err := os.Chmod(rootfs, 0o755); err != nil { // the image's / as a runtime makes it
		t.Fatal(err)
	}
	files := s.unpack(t, rootfs)
	want := map[string]bool{"usr/local/bin/herald": true, "etc/ssl/certs/ca-certificates.crt": true, "etc/passwd": true, "etc/group": true}
	var names []string
	for name, e := range files {
		names = append(names, name)
		if e.mode.IsDir() {
			continue
		}
		if !want[name] {
			t.Errorf("the image holds %s, which it should not", name)
		}
		switch path.Base(name) {
		case "sh", "bash", "dash", "ash", "busybox", "apt", "apt-get", "dpkg", "apk":
			t.Errorf("the image holds a shell or package manager: %s", name)
		}
	}
	for name := range want {
		if _, ok := files[name]; !ok {
			t.Errorf("the image lacks %s", name)
		}
	}
	slices.Sort(names)
	t.Logf("the image holds: %s", strings.Join(names, " "))
	if d := files["var/lib/herald"]; !d.mode.IsDir() || d.uid != 65532 || d.mode.Perm() != 0o700 {
		t.Errorf("/var/lib/herald: %v owned by %d, want a directory 0700 owned by 65532", d.mode, d.uid)
	}
	bin := filepath.Join(rootfs, "usr", "local", "bin", "herald")
	checkStatic(t, bin)
	if fi, err := os.Stat(bin); err == nil {
		var layers int
		for _, l := range s.layers {
			layers += len(l)
		}
		t.Logf("binary %.1f MB; image layers %.1f MB as saved", float64(fi.Size())/1e6, float64(layers)/1e6)
	}
	if t.Failed() {
		return
	}
	runEntrypoint(t, rootfs, s.config)
}

// checkStatic fails unless bin is an ELF executable with no interpreter
// and no shared libraries.
func checkStatic(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has an interpreter: it is not static", bin)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s needs shared libraries %v", bin, libs)
	}
}

var tokenRE = regexp.MustCompile(`hrld_[A-Za-z0-9_-]{43}`)

// runEntrypoint runs the unpacked image's entrypoint and command as a
// runtime would, with only what a deployment adds to its environment: the
// address to listen on and the receiver the test allows.
func runEntrypoint(t *testing.T, rootfs string, cfg imageConfig) {
	c := cfg.Config
	var mu sync.Mutex
	var got []*http.Request
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer rcv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	uid, gid := 65532, 65532
	cmd := exec.Command(c.Entrypoint[0], append(c.Entrypoint[1:], c.Cmd...)...)
	cmd.Env = append(slices.Clone(c.Env),
		"HERALD_ADDR="+addr,
		"HERALD_ALLOW_HTTP=true",
		"HERALD_ALLOW_DESTINATIONS="+strings.TrimPrefix(rcv.URL, "http://"),
		"HERALD_LOG_LEVEL=info")
	cmd.Dir = c.WorkingDir
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Chroot:     rootfs,
		Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)},
		Pdeathsig:  syscall.SIGKILL,
	}
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("run the entrypoint: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		t.Logf("herald's log:\n%s", lastLines(stderr.String(), 30))
	}()
	base := "http://" + addr
	if !waitFor(60*time.Second, exited, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}) {
		t.Fatalf("herald did not answer /readyz; stdout:\n%s", stdout.String())
	}
	// The key is printed before herald listens, but the goroutine that
	// copies herald's output here may not have copied it yet.
	var token string
	waitFor(10*time.Second, exited, func() bool {
		token = tokenRE.FindString(stdout.String())
		return token != ""
	})
	if token == "" {
		t.Fatalf("the first start printed no admin key:\n%s", stdout.String())
	}
	gql := func(query string, vars map[string]any) map[string]any {
		body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
		req, _ := http.NewRequest(http.MethodPost, base+"/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			Data   map[string]any
			Errors []any
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Errors != nil {
			t.Fatalf("%s: %v %v", query, err, out.Errors)
		}
		return out.Data
	}
	// A fresh installation's catalog holds only Herald's own types.
	gql(`mutation { createEventType(input: {name: "order.created"}) { id } }`, nil)
	gql(`mutation($u: String!) { createEndpoint(input: {name: "image", url: $u, eventTypes: ["*"]}) { secret } }`,
		map[string]any{"u": rcv.URL + "/hook"})
	data := gql(`mutation { publishEvent(input: {eventType: "order.created", payload: {from: "the image"}}) { id } }`, nil)
	id := data["publishEvent"].(map[string]any)["id"].(string)
	if !waitFor(60*time.Second, exited, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.ContainsFunc(got, func(r *http.Request) bool { return r.Header.Get("Webhook-Id") == id })
	}) {
		t.Fatalf("event %s was not delivered", id)
	}
	db, err := os.Stat(filepath.Join(rootfs, "var", "lib", "herald", "herald.db"))
	if err != nil {
		t.Fatalf("no database in the data directory: %v", err)
	}
	if st := db.Sys().(*syscall.Stat_t); st.Uid != uint32(uid) {
		t.Errorf("the database belongs to uid %d, want %d", st.Uid, uid)
	}
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	const grace = 10 * time.Second // herald's default --shutdown-grace
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("herald exited with %v on SIGTERM", err)
		}
		t.Logf("delivered event %s; stopped cleanly %v after SIGTERM", id, time.Since(start).Round(time.Millisecond))
	case <-time.After(grace + 5*time.Second):
		t.Fatalf("herald still ran %v after SIGTERM (grace %v)", grace+5*time.Second, grace)
	}
}

// waitFor polls cond until it holds (true), or the process exits or
// timeout passes (false).
func waitFor(timeout time.Duration, exited chan error, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		select {
		case err := <-exited:
			exited <- err // for whoever waits next
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
	return false
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
