package httpapi

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// statusCodes finds "NNN code" and "NNN code | code ..." in text.
var statusCodes = regexp.MustCompile("([1-5][0-9][0-9]) `?([a-z_]+(?: \\| [a-z_]+)*)")

// TestDocsAgreeWithErrorTable: the README's list of refusals names every
// code of errorTable with its status; README.md, docs/ and configs/ never
// give a code another status; and the reference configuration says what
// strict_queues answers for an unknown queue.
func TestDocsAgreeWithErrorTable(t *testing.T) {
	root := filepath.Join("..", "..")
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	configs, err := filepath.Glob(filepath.Join(root, "configs", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	readme := filepath.Join(root, "README.md")
	files = append(append(files, configs...), readme)
	status := map[string]int{}
	for _, e := range errorTable {
		status[e.code] = e.status
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Join(strings.Fields(strings.ReplaceAll(string(b), "#", " ")), " ")
		seen := map[string]bool{}
		for _, m := range statusCodes.FindAllStringSubmatch(text, -1) {
			n, _ := strconv.Atoi(m[1])
			for _, code := range strings.Split(m[2], " | ") {
				if want, ok := status[code]; ok && want != n {
					t.Errorf("%s: %q gives %s status %d, errorTable %d", f, m[0], code, n, want)
				}
				seen[code] = true
			}
		}
		if f != readme {
			continue
		}
		for _, e := range errorTable {
			if !seen[e.code] {
				t.Errorf("README.md does not list the refusal %d %s", e.status, e.code)
			}
		}
	}

	conf, err := os.ReadFile(filepath.Join(root, "configs", "edgeq.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(conf), "\nstrict_queues:")
	comment := string(conf[:len(conf)-len(after)])
	comment = comment[strings.LastIndex(strings.TrimSuffix(comment, "\nstrict_queues:"), "\n\n")+1:]
	if !ok || !strings.Contains(comment, "404 unknown_queue") || strings.Contains(comment, "invalid_queue") {
		t.Errorf("configs/edgeq.yaml says of strict_queues:\n%s\nwant 404 unknown_queue", comment)
	}
}
