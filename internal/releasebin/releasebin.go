// Package releasebin builds the herald binary of an earlier commit of this
// repository, from its git history, for the tests and fixtures of
// upgrades: `git archive` of the commit into a temporary directory, then
// `go build ./cmd/herald` there with the commit's own go.mod. Built
// binaries are kept in the user's cache directory, one per commit, so that
// later runs reuse them.
package releasebin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// RepoRoot returns the root of the git checkout this package is in.
func RepoRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("releasebin: cannot locate the source tree")
	}
	out, err := exec.Command("git", "-C", filepath.Dir(file), "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return "", fmt.Errorf("releasebin: not in a git checkout: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// HasCommit reports whether the checkout's history holds commit (a shallow
// clone may not).
func HasCommit(commit string) bool {
	root, err := RepoRoot()
	if err != nil {
		return false
	}
	return exec.Command("git", "-C", root, "cat-file", "-e", commit+"^{commit}").Run() == nil
}

// Build returns the path of the herald binary of commit, building it if
// the cache does not hold it yet.
func Build(ctx context.Context, commit string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	full, err := exec.Command("git", "-C", root, "rev-parse", "--verify", commit+"^{commit}").Output()
	if err != nil {
		return "", fmt.Errorf("releasebin: commit %s is not in this checkout's history (a shallow clone? fetch it with git fetch --unshallow): %w", commit, err)
	}
	sha := strings.TrimSpace(string(full))
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "herald", "release-bin", sha)
	bin := filepath.Join(dir, "herald")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("releasebin: %w", err)
	}
	src, err := os.MkdirTemp("", "herald-src-"+sha[:12]+"-")
	if err != nil {
		return "", fmt.Errorf("releasebin: %w", err)
	}
	defer os.RemoveAll(src)
	archive := exec.CommandContext(ctx, "git", "-C", root, "archive", "--format=tar", sha)
	untar := exec.CommandContext(ctx, "tar", "-x", "-C", src)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return "", err
	}
	untar.Stdin = pipe
	var archiveErr, untarErr strings.Builder
	archive.Stderr, untar.Stderr = &archiveErr, &untarErr
	if err := untar.Start(); err != nil {
		return "", fmt.Errorf("releasebin: tar: %w", err)
	}
	if err := archive.Run(); err != nil {
		_ = untar.Wait()
		return "", fmt.Errorf("releasebin: git archive %s: %v: %s", commit, err, archiveErr.String())
	}
	if err := untar.Wait(); err != nil {
		return "", fmt.Errorf("releasebin: tar: %v: %s", err, untarErr.String())
	}
	tmp := bin + ".partial-" + fmt.Sprint(os.Getpid())
	build := exec.CommandContext(ctx, "go", "build", "-o", tmp, "./cmd/herald")
	build.Dir = src
	build.Env = append(os.Environ(), "CGO_ENABLED=1", "GOFLAGS=-buildvcs=false")
	if out, err := build.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("releasebin: go build of %s: %v\n%s", commit, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", fmt.Errorf("releasebin: %w", err)
	}
	return bin, nil
}
