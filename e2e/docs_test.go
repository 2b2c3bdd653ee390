package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestGovernorDocDrill runs the drill example of docs/governor.md on the
// real binary: the daemon it describes (the section's YAML block as the
// config file, the built-in defaults without one), then each curl line,
// checking the status (and error code) its comment promises.
func TestGovernorDocDrill(t *testing.T) {
	doc, err := os.ReadFile("../docs/governor.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## Drills\n")
	if !ok {
		t.Fatal("docs/governor.md has no Drills section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	yaml, curls := codeBlock(section, "yaml"), codeBlock(section, "sh")
	if curls == "" {
		t.Fatal("the Drills section has no sh block")
	}

	dir := t.TempDir()
	var args []string
	if yaml != "" {
		conf := filepath.Join(dir, "edgeq.yaml")
		if err := os.WriteFile(conf, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		args = []string{"--config", conf}
	}
	d := startDaemon(t, filepath.Join(dir, "data"), args...)
	c := &http.Client{Timeout: 10 * time.Second}
	n := 0
	for line := range strings.Lines(curls) {
		cmd, comment, _ := strings.Cut(line, "#")
		words := shellWords(cmd)
		if len(words) == 0 || words[0] != "curl" {
			continue
		}
		n++
		method, body, url := "GET", "", ""
		header := http.Header{}
		for i := 1; i < len(words); i++ {
			switch w := words[i]; {
			case w == "-X" && i+1 < len(words):
				method, i = words[i+1], i+1
			case w == "-H" && i+1 < len(words):
				k, v, _ := strings.Cut(words[i+1], ":")
				header.Set(k, strings.TrimSpace(v))
				i++
			case (w == "-d" || w == "--data-binary") && i+1 < len(words):
				body, i = words[i+1], i+1
				if method == "GET" {
					method = "POST"
				}
			case strings.HasPrefix(w, "http://127.0.0.1:7070/"):
				url = d.base + strings.TrimPrefix(w, "http://127.0.0.1:7070")
			default:
				t.Fatalf("docs/governor.md: %q: unexpected curl argument %q", line, w)
			}
		}
		if url == "" {
			t.Fatalf("docs/governor.md: %q: no URL on 127.0.0.1:7070", line)
		}
		wantStatus, wantCode := expectation(comment)
		req, err := http.NewRequestWithContext(context.Background(), method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = header
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		json.Unmarshal(data, &e)
		switch {
		case wantStatus == "" && (resp.StatusCode < 200 || resp.StatusCode > 299):
			t.Errorf("docs/governor.md: %q answered %d %s, want 2xx", strings.TrimSpace(line), resp.StatusCode, data)
		case wantStatus != "" && wantStatus != strconv.Itoa(resp.StatusCode):
			t.Errorf("docs/governor.md: %q answered %d %s, want %s", strings.TrimSpace(line), resp.StatusCode, data, wantStatus)
		case wantCode != "" && e.Error.Code != wantCode:
			t.Errorf("docs/governor.md: %q answered code %q, want %q", strings.TrimSpace(line), e.Error.Code, wantCode)
		case !strings.Contains(compact(data), compact([]byte(jsonShown.FindString(comment)))):
			t.Errorf("docs/governor.md: %q answered %s, want it to hold %s", strings.TrimSpace(line), data, jsonShown.FindString(comment))
		}
	}
	if n == 0 {
		t.Fatal("the Drills section's sh block has no curl line")
	}
}

// jsonShown is the JSON a comment shows the answer holding.
var jsonShown = regexp.MustCompile(`\{.*\}`)

// compact answers JSON without blanks, or data as it is when it is not JSON.
func compact(data []byte) string {
	var b bytes.Buffer
	if json.Compact(&b, data) != nil {
		return string(data)
	}
	return b.String()
}

// codeBlock answers the body of the first fenced block of language lang.
func codeBlock(md, lang string) string {
	_, rest, ok := strings.Cut(md, "```"+lang+"\n")
	if !ok {
		return ""
	}
	body, _, _ := strings.Cut(rest, "```")
	return body
}

// shellWords splits a command line at blanks, keeping single-quoted words
// whole (all the doc's examples need).
func shellWords(s string) []string {
	var out []string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		if s[0] == '\'' {
			w, rest, _ := strings.Cut(s[1:], "'")
			out, s = append(out, w), rest
			continue
		}
		i := strings.IndexAny(s, " \t")
		if i < 0 {
			i = len(s)
		}
		out, s = append(out, s[:i]), s[i:]
	}
	return out
}

// statusWord is "NNN" or "NNN code" at the start of a comment, or after
// a colon in it ("a bulk queue: 429 shed").
var statusWord = regexp.MustCompile(`(?:^|:\s)\s*([1-5]\d\d)(?:\s+([a-z_]+))?`)

// expectation reads the status and error code a comment promises; an
// empty status means any 2xx.
func expectation(comment string) (status, code string) {
	m := statusWord.FindStringSubmatch(strings.TrimSpace(comment))
	if m == nil {
		return "", ""
	}
	if m[1] >= "400" {
		code = m[2]
	}
	return m[1], code
}
