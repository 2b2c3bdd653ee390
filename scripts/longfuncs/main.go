// Command longfuncs lists the functions longer than a limit in the Go
// files under the given directories, tests and third_party left out:
//
//	go run ./scripts/longfuncs [-max 80] [dir ...]
//
// It prints "file:line: name: n lines", longest first, and exits 1 when it
// printed any, so that e2e's TestFunctionLength fails on a function over
// the limit (STYLE.md: a function over ~80 lines usually holds two jobs).
package main

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	limit := flag.Int("max", 80, "longest function allowed, in lines")
	flag.Parse()
	dirs := flag.Args()
	if len(dirs) == 0 {
		dirs = []string{"."}
	}
	n, err := run(os.Stdout, *limit, dirs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "longfuncs:", err)
		os.Exit(2)
	}
	if n > 0 {
		os.Exit(1)
	}
}

// longFunc is a function over the limit.
type longFunc struct {
	Pos   token.Position
	Name  string
	Lines int
}

// run prints the functions over limit under dirs and answers how many.
func run(w io.Writer, limit int, dirs []string) (int, error) {
	var long []longFunc
	for _, dir := range dirs {
		fs, err := longFuncs(dir, limit)
		if err != nil {
			return 0, err
		}
		long = append(long, fs...)
	}
	for _, f := range long {
		fmt.Fprintf(w, "%s:%d: %s: %d lines\n", f.Pos.Filename, f.Pos.Line, f.Name, f.Lines)
	}
	return len(long), nil
}

// longFuncs answers the functions and methods longer than limit lines in
// the production Go files under root, longest first. Lines run from the
// func keyword to the closing brace.
func longFuncs(root string, limit int) ([]longFunc, error) {
	fset := token.NewFileSet()
	var out []longFunc
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != root && (n == "third_party" || n == "testdata" || strings.HasPrefix(n, ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			start, end := fset.Position(fd.Pos()), fset.Position(fd.End())
			if n := end.Line - start.Line + 1; n > limit {
				out = append(out, longFunc{Pos: start, Name: funcName(fd), Lines: n})
			}
		}
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Lines > out[j].Lines })
	return out, err
}

func funcName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	t := fd.Recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	if g, ok := t.(*ast.IndexExpr); ok {
		t = g.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name + "." + fd.Name.Name
	}
	return fd.Name.Name
}
