// Command funclen measures Go code for issue 11's "no function longer than
// 60 lines": it prints the lines of each non-test file and the longest
// functions (a function's lines run from its func keyword to its closing
// brace, doc comment excluded; a function literal counts within its
// enclosing function).
//
//	go run ./scripts/funclen [-max 60] [-top 10] [-tests] ./fsm ./steps ./state
//
// It exits 1 when a function is longer than -max, so it can gate CI.
package main

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

type fn struct {
	name  string
	pos   token.Position
	lines int
}

func main() {
	max := flag.Int("max", 60, "the longest a function may be, in lines")
	top := flag.Int("top", 10, "how many of the longest functions to list")
	tests := flag.Bool("tests", false, "include _test.go files")
	flag.Parse()
	fset := token.NewFileSet()
	var fns []fn
	fmt.Println("| file | lines |\n|---|---:|")
	total := 0
	for _, dir := range flag.Args() {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "funclen:", err)
			os.Exit(2)
		}
		sort.Strings(files)
		for _, name := range files {
			if !*tests && strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
			if err != nil {
				fmt.Fprintln(os.Stderr, "funclen:", err)
				os.Exit(2)
			}
			n := fset.File(f.Pos()).LineCount()
			total += n
			fmt.Printf("| %s | %d |\n", name, n)
			for _, d := range f.Decls {
				fd, ok := d.(*ast.FuncDecl)
				if !ok || fd.Body == nil {
					continue
				}
				name := fd.Name.Name
				if fd.Recv != nil && len(fd.Recv.List) > 0 {
					name = recv(fd.Recv.List[0].Type) + "." + name
				}
				start, end := fset.Position(fd.Pos()), fset.Position(fd.End())
				fns = append(fns, fn{name, start, end.Line - start.Line + 1})
			}
		}
	}
	fmt.Printf("| total | %d |\n\n", total)
	sort.SliceStable(fns, func(i, j int) bool { return fns[i].lines > fns[j].lines })
	fmt.Println("| function | where | lines |\n|---|---|---:|")
	for i, f := range fns {
		if i >= *top {
			break
		}
		fmt.Printf("| %s | %s:%d | %d |\n", f.name, f.pos.Filename, f.pos.Line, f.lines)
	}
	over := 0
	for _, f := range fns {
		if f.lines > *max {
			over++
		}
	}
	fmt.Printf("\n%d functions, %d longer than %d lines\n", len(fns), over, *max)
	if over > 0 {
		os.Exit(1)
	}
}

func recv(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.StarExpr:
		return "*" + recv(t.X)
	case *ast.IndexExpr:
		return recv(t.X)
	case *ast.IndexListExpr:
		return recv(t.X)
	case *ast.Ident:
		return t.Name
	}
	return "?"
}
