package steps

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"boxswap/boxes"
)

func TestRenameRealShell(t *testing.T) {
	ctx := context.Background()
	// Each starting point is a state Apply can be interrupted in.
	for _, tc := range []struct {
		name          string
		src, dst, old bool
	}{
		{"first time", true, false, false},
		{"older backup", true, true, false},
		{"older backup and a leftover .old", true, true, true},
		{"interrupted after moving the old backup aside", true, false, true},
		{"interrupted before removing .old", false, true, true},
		{"done", false, true, false},
	} {
		root := filepath.Join(t.TempDir(), "data root")
		src := filepath.Join(root, "students")
		if tc.src {
			mustWrite(t, filepath.Join(src, "alice", "nb"), "new")
		}
		if tc.dst {
			mustWrite(t, filepath.Join(src+".prod", "alice", "nb"), map[bool]string{true: "older", false: "new"}[tc.src])
		}
		if tc.old {
			mustWrite(t, filepath.Join(src+".prod.old", "x"), "oldest")
		}
		r := newShRunner(t)
		te := newEnv(map[string]boxes.Runner{"thermals": r})
		s := Rename("epilogue/rename/students", "thermals", root, "students", ".prod")
		done, _, err := s.Check(ctx, te.Env)
		if err != nil || done != (!tc.src && tc.dst && !tc.old) {
			t.Errorf("%s: check before = %v %v", tc.name, done, err)
		}
		if err := s.Apply(ctx, te.Env); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if exists(src) || exists(src+".prod.old") || mustRead(t, filepath.Join(src+".prod", "alice", "nb")) != "new" {
			t.Errorf("%s: wrong result", tc.name)
		}
		if done, _, err := s.Check(ctx, te.Env); !done || err != nil {
			t.Errorf("%s: check after = %v %v", tc.name, done, err)
		}
		if err := s.Undo(ctx, te.Env); err != nil || !exists(filepath.Join(src, "alice", "nb")) || exists(src+".prod") {
			t.Errorf("%s: undo: %v", tc.name, err)
		}
		if err := s.Undo(ctx, te.Env); err != nil {
			t.Errorf("%s: second undo: %v", tc.name, err)
		}
	}
}

func TestRenameNothingThere(t *testing.T) {
	r := newShRunner(t)
	te := newEnv(map[string]boxes.Runner{"b": r})
	err := Rename("id", "b", t.TempDir(), "students", ".prod").Apply(context.Background(), te.Env)
	if !errors.Is(err, ErrPrecondition) {
		t.Fatalf("err = %v", err)
	}
}

func TestRenameRefusesUnsafePaths(t *testing.T) {
	for _, tc := range [][3]string{
		{"relative", "students", ".prod"},
		{"/nbhosting", "..", ".prod"},
		{"/nbhosting", "a/b", ".prod"},
		{"/nbhosting", "students", ""},
		{"/nbhosting", "students", "/x"},
	} {
		f := &fakeRunner{}
		te := newEnv(map[string]boxes.Runner{"b": f})
		if err := Rename("id", "b", tc[0], tc[1], tc[2]).Apply(context.Background(), te.Env); err == nil {
			t.Errorf("%q accepted", tc)
		}
		if len(f.sent()) != 0 {
			t.Errorf("%q: sent %q", tc, f.sent())
		}
	}
}

func TestRenameDescribe(t *testing.T) {
	d := Rename("e/r", "thermals", "/nbhosting", "students", ".prod").Describe()
	want := []string{
		"if test -e /nbhosting/students; then echo src; fi; if test -e /nbhosting/students.prod; then echo dst; fi; if test -e /nbhosting/students.prod.old; then echo old; fi",
		"mv -T -- /nbhosting/students.prod /nbhosting/students.prod.old",
		"mv -T -- /nbhosting/students /nbhosting/students.prod",
		"rm -rf -- /nbhosting/students.prod.old",
	}
	if !equalStrings(d.Commands, want) || !equalStrings(d.Undo, []string{"mv -T -- /nbhosting/students.prod /nbhosting/students"}) {
		t.Errorf("describe = %q / %q", d.Commands, d.Undo)
	}
}
