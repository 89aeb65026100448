package examples_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// docPages returns README.md and every page of docs/, as paths from the
// repository root.
func docPages(t *testing.T) []string {
	t.Helper()
	pages, err := filepath.Glob(filepath.Join("..", "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) == 0 {
		t.Fatal("no docs/*.md")
	}
	return append([]string{filepath.Join("..", "README.md")}, pages...)
}

var (
	mdLink     = regexp.MustCompile(`!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	codeSpan   = regexp.MustCompile("`+[^`]*`+")
	explicitID = regexp.MustCompile(`<a\s+(?:id|name)="([^"]+)"`)
	heading    = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*$`)
)

// slug is the anchor GitHub gives a heading: lower case, punctuation
// dropped, spaces turned into hyphens.
func slug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// markdown is a page's links and anchors, read outside code blocks.
type markdown struct {
	links   []string // targets, in order
	anchors map[string]bool
}

func readMarkdown(t *testing.T, path string) markdown {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	md := markdown{anchors: map[string]bool{}}
	seen := map[string]int{}
	fence := ""
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			fence = trimmed[:3]
			continue
		}
		for _, m := range explicitID.FindAllStringSubmatch(line, -1) {
			md.anchors[m[1]] = true
		}
		if m := heading.FindStringSubmatch(line); m != nil {
			s := slug(m[1])
			if n := seen[s]; n > 0 {
				md.anchors[s+"-"+strconv.Itoa(n)] = true
			} else {
				md.anchors[s] = true
			}
			seen[s]++
		}
		for _, m := range mdLink.FindAllStringSubmatch(codeSpan.ReplaceAllString(line, "``"), -1) {
			md.links = append(md.links, m[1])
		}
	}
	return md
}

// TestDocs_LinksResolve checks every relative link of README.md and
// docs/*.md: the file it names exists in the repository, and the anchor
// it names is a heading (or an explicit anchor) of that page.
func TestDocs_LinksResolve(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	pages := map[string]markdown{}
	read := func(path string) markdown {
		if md, ok := pages[path]; ok {
			return md
		}
		md := readMarkdown(t, path)
		pages[path] = md
		return md
	}
	checked := 0
	for _, page := range docPages(t) {
		page, _ := filepath.Abs(page)
		rel, _ := filepath.Rel(root, page)
		for _, link := range read(page).links {
			if regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`).MatchString(link) {
				continue // https:, mailto:: not ours to check
			}
			checked++
			file, anchor, _ := strings.Cut(link, "#")
			target := page
			if file != "" {
				target = filepath.Join(filepath.Dir(page), filepath.FromSlash(file))
				if r, err := filepath.Rel(root, target); err != nil || strings.HasPrefix(r, "..") {
					t.Errorf("%s: link %q leaves the repository", rel, link)
					continue
				}
				if _, err := os.Stat(target); err != nil {
					t.Errorf("%s: link %q: no such file", rel, link)
					continue
				}
			}
			if anchor == "" {
				continue
			}
			if !strings.HasSuffix(target, ".md") {
				t.Errorf("%s: link %q: an anchor in a file that is not Markdown", rel, link)
				continue
			}
			if !read(target).anchors[anchor] {
				t.Errorf("%s: link %q: %s has no heading or anchor %q", rel, link, filepath.Base(target), anchor)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no relative links found: the link pattern is broken")
	}
	t.Logf("%d relative links checked in %d pages", checked, len(docPages(t)))
}

// TestDocs_EveryPageIsListed keeps the README's table of contents whole:
// every page of docs/ is linked from its "Documentation" section.
func TestDocs_EveryPageIsListed(t *testing.T) {
	t.Parallel()
	toc := docSection(t, "README.md", "## Documentation")
	for _, page := range docPages(t)[1:] {
		name := filepath.Base(page)
		if !strings.Contains(toc, "](docs/"+name+")") {
			t.Errorf("README.md's Documentation section does not link docs/%s", name)
		}
	}
}
