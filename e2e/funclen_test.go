package e2e

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestFunctionLength keeps every production function within 80 lines
// (STYLE.md: a longer one usually holds two jobs); tests and third_party
// are left out. scripts/longfuncs lists the offenders.
func TestFunctionLength(t *testing.T) {
	out, err := exec.Command("go", "run", "../scripts/longfuncs", "-max", "80", "..").CombinedOutput()
	if err != nil {
		t.Errorf("functions over 80 lines (go run ./scripts/longfuncs):\n%s", out)
	}
}

// TestFileLength keeps every production Go file within 500 lines (issue 15:
// a longer one is usually several rooms); tests, testdata and third_party
// are left out.
func TestFileLength(t *testing.T) {
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != ".." && (n == "third_party" || n == "testdata" || strings.HasPrefix(n, ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if n := bytes.Count(b, []byte("\n")); n > 500 {
			t.Errorf("%s: %d lines, want at most 500: split it by topic", path, n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
