// Command binsize says what makes a Go binary big: it attributes the size
// of every symbol of code and read-only data (go tool nm) to the module
// that defines it (the modules go version -m lists, the standard library,
// and C for cgo's objects), and spreads the rest of the file (the
// function tables the runtime needs, type links) over them in proportion.
// `make size` runs it on the image's binary built with its symbols.
//
//	go run ./internal/cmd/binsize [-top 25] BINARY
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

func main() {
	top := flag.Int("top", 25, "how many modules to list")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: binsize [-top N] BINARY (built without -s -w)")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *top); err != nil {
		fmt.Fprintln(os.Stderr, "binsize:", err)
		os.Exit(1)
	}
}

func run(bin string, top int) error {
	mods, main, err := modules(bin)
	if err != nil {
		return err
	}
	out, err := exec.Command("go", "tool", "nm", "-size", bin).Output()
	if err != nil {
		return fmt.Errorf("go tool nm: %w (build the binary without -s -w)", err)
	}
	sizes := map[string]int64{}
	var total int64
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.ContainsAny(f[2], "TtRr") {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || n == 0 {
			continue
		}
		owner := ownerOf(strings.Join(f[3:], " "), mods, main)
		sizes[owner] += n
		total += n
	}
	if total == 0 {
		return fmt.Errorf("%s has no symbols: build it without -s -w", bin)
	}
	fi, err := os.Stat(bin)
	if err != nil {
		return err
	}
	type row struct {
		name string
		size int64
	}
	var rows []row
	for k, v := range sizes {
		rows = append(rows, row{k, v})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].size > rows[j].size })
	// The stripped binary is about this big: code and data, and the
	// runtime's tables, which grow with the code.
	stripped := strippedSize(bin)
	scale := float64(stripped) / float64(total)
	fmt.Printf("%s: %.1f MB with symbols, about %.1f MB stripped; %.1f MB of code and read-only data attributed below,\n"+
		"each module's share scaled by %.2f to include the function tables that grow with it\n\n",
		bin, mb(fi.Size()), mb(stripped), mb(total), scale)
	tw := tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "MB\t%%\tmodule\t\n")
	var shown int64
	for i, r := range rows {
		if i == top {
			break
		}
		shown += r.size
		fmt.Fprintf(tw, "%.2f\t%.1f\t%s\t\n", mb(int64(float64(r.size)*scale)), 100*float64(r.size)/float64(total), r.name)
	}
	fmt.Fprintf(tw, "%.2f\t%.1f\t%s\t\n", mb(int64(float64(total-shown)*scale)), 100*float64(total-shown)/float64(total), "(the rest)")
	return tw.Flush()
}

func mb(n int64) float64 { return float64(n) / 1e6 }

// strippedSize builds nothing: it strips a copy with objcopy when it can,
// else estimates from the file.
func strippedSize(bin string) int64 {
	tmp, err := os.CreateTemp("", "binsize-")
	if err != nil {
		return 0
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	if err := exec.Command("objcopy", "--strip-all", bin, tmp.Name()).Run(); err == nil {
		if fi, err := os.Stat(tmp.Name()); err == nil {
			return fi.Size()
		}
	}
	fi, _ := os.Stat(bin)
	return fi.Size()
}

// modules lists the binary's module paths (longest first, for prefix
// matching) and its main module.
func modules(bin string) ([]string, string, error) {
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		return nil, "", fmt.Errorf("go version -m: %w", err)
	}
	var mods []string
	main := ""
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && (f[0] == "dep" || f[0] == "mod") {
			mods = append(mods, f[1])
			if f[0] == "mod" {
				main = f[1]
			}
		}
	}
	sort.Slice(mods, func(i, j int) bool { return len(mods[i]) > len(mods[j]) })
	return mods, main, nil
}

// ownerOf names the module a symbol belongs to.
func ownerOf(sym string, mods []string, main string) string {
	s := sym
	for _, p := range []string{"go:itab.", "go:type:", "go:string.", "go:func.", "type:.eq.", "type:", "go:"} {
		s = strings.TrimPrefix(s, p)
	}
	s = strings.TrimLeft(s, "*(")
	for _, m := range mods {
		if strings.HasPrefix(s, m+".") || strings.HasPrefix(s, m+"/") {
			if m == main {
				// The main module by package: ent, graph and the rest.
				rest := strings.TrimPrefix(s, m+"/")
				pkg := rest
				if i := strings.IndexAny(rest, "./"); i >= 0 {
					pkg = rest[:i]
				}
				return m + "/" + pkg
			}
			return m
		}
	}
	first := s
	if i := strings.IndexAny(s, "./("); i >= 0 {
		first = s[:i]
	}
	switch {
	case first == "" || strings.ContainsAny(first, "[]{} ,"):
		return "(runtime tables and generics)"
	case isStd(first):
		return "std"
	default:
		return "C (cgo: SQLite, libc)"
	}
}

func isStd(first string) bool {
	for _, c := range first {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
