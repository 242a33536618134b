package steps

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"boxswap/boxes"
)

// gitRepo clones an upstream (bare, with branches master and f29, f29 a
// commit ahead) into a checkout whose path has a space, as a site's
// checkout is cloned from its origin.
func gitRepo(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("git is needed: %v", err)
	}
	top := t.TempDir()
	up, seed, dir := filepath.Join(top, "up.git"), filepath.Join(top, "seed"), filepath.Join(top, "nb hosting")
	mustWrite(t, filepath.Join(seed, "README"), "x\n")
	gitT(t, "", "init", "-q", "--bare", "-b", "master", up)
	gitT(t, seed, "init", "-q", "-b", "master")
	gitT(t, seed, "add", "-A")
	gitT(t, seed, "commit", "-q", "-m", "init")
	gitT(t, seed, "commit", "-q", "--allow-empty", "-m", "f29 work")
	gitT(t, seed, "push", "-q", up, "HEAD~1:refs/heads/master", "HEAD:refs/heads/f29")
	gitT(t, "", "clone", "-q", up, dir)
	return dir
}

func gitT(t *testing.T, dir string, args ...string) string {
	t.Helper()
	if dir != "" {
		args = append([]string{"-C", dir}, args...)
	}
	args = append([]string{"-c", "user.email=t@t", "-c", "user.name=t"}, args...)
	out, err := exec.Command("git", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v %s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func currentBranch(t *testing.T, dir string) string {
	out, err := exec.Command("git", "-C", dir, "symbolic-ref", "--short", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

func hasBranch(dir, b string) bool {
	return exec.Command("git", "-C", dir, "rev-parse", "--verify", "--quiet", "refs/heads/"+b).Run() == nil
}

func TestBranchRealGit(t *testing.T) {
	ctx := context.Background()
	dir := gitRepo(t)
	r := newShRunner(t)
	te := newEnv(map[string]boxes.Runner{"thermals": r})
	s := Branch("upgrade-dev/branch", "thermals", dir, "f29")
	if done, _, err := s.Check(ctx, te.Env); done || err != nil {
		t.Fatalf("check before: %v %v", done, err)
	}
	if err := s.Apply(ctx, te.Env); err != nil {
		t.Fatal(err)
	}
	if currentBranch(t, dir) != "f29" {
		t.Fatal("not on f29")
	}
	if done, _, err := s.Check(ctx, te.Env); !done || err != nil {
		t.Fatalf("check after: %v %v", done, err)
	}
	if err := s.Apply(ctx, te.Env); err != nil {
		t.Fatalf("again: %v", err)
	}
	if err := s.Undo(ctx, te.Env); err != nil {
		t.Fatal(err)
	}
	if currentBranch(t, dir) != "master" || hasBranch(dir, "f29") {
		t.Fatal("undo did not go back")
	}
	if err := s.Undo(ctx, te.Env); err != nil {
		t.Fatalf("undo again: %v", err)
	}
}

func TestBranchExistingIsKeptOnUndo(t *testing.T) {
	ctx := context.Background()
	dir := gitRepo(t)
	if err := exec.Command("git", "-C", dir, "branch", "f29").Run(); err != nil {
		t.Fatal(err)
	}
	te := newEnv(map[string]boxes.Runner{"b": newShRunner(t)})
	s := Branch("id", "b", dir, "f29")
	if err := s.Apply(ctx, te.Env); err != nil || currentBranch(t, dir) != "f29" {
		t.Fatalf("apply: %v", err)
	}
	if err := s.Undo(ctx, te.Env); err != nil || currentBranch(t, dir) != "master" || !hasBranch(dir, "f29") {
		t.Fatalf("undo: %v", err)
	}
}

func TestBranchDescribeAndBadName(t *testing.T) {
	d := Branch("id", "thermals", "/root/nbhosting", "f29").Describe()
	want := []string{
		"if git -C /root/nbhosting remote get-url origin >/dev/null 2>&1; then git -C /root/nbhosting fetch --quiet origin; else echo 'no remote origin: nothing fetched'; fi",
		"git -C /root/nbhosting rev-parse --verify --quiet 'origin/f29^{commit}'",
		"git -C /root/nbhosting checkout -b f29 origin/f29",
	}
	if !equalStrings(d.Commands, want) {
		t.Errorf("commands %q", d.Commands)
	}
	f := &fakeRunner{}
	te := newEnv(map[string]boxes.Runner{"b": f})
	if err := Branch("id", "b", "/x", "-f").Apply(context.Background(), te.Env); err == nil || len(f.sent()) != 0 {
		t.Fatalf("bad name: %v, sent %q", err, f.sent())
	}
}
