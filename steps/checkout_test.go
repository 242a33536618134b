package steps

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"boxswap/boxes"
)

func TestCheckoutCommands(t *testing.T) {
	hostile := Remote{Host: "thermals.inria.fr", User: "root", Port: 2222, Checkout: "/root/nb hosting"}
	for _, c := range []struct{ name, got, want string }{
		{"fetch origin", FetchOriginCmd("/root/nbhosting"),
			"if git -C /root/nbhosting remote get-url origin >/dev/null 2>&1; then git -C /root/nbhosting fetch --quiet origin; else echo 'no remote origin: nothing fetched'; fi"},
		{"fetch commit", FetchCommitCmd("/root/nbhosting", Remote{Host: "thermals", Checkout: "/root/nbhosting"}, "0123456789abcdef0123456789abcdef01234567"),
			"git -C /root/nbhosting -c 'core.sshCommand=ssh -o BatchMode=yes -o StrictHostKeyChecking=yes' fetch --quiet ssh://root@thermals:22/root/nbhosting 0123456789abcdef0123456789abcdef01234567"},
		{"fetch commit, path with a space", FetchCommitCmd("/root/nb hosting", hostile, "abc1234"),
			"git -C '/root/nb hosting' -c 'core.sshCommand=ssh -o BatchMode=yes -o StrictHostKeyChecking=yes' fetch --quiet 'ssh://root@thermals.inria.fr:2222/root/nb hosting' abc1234"},
		{"resolve a ref", ResolveCmd("/root/nbhosting", "origin/f29"), "git -C /root/nbhosting rev-parse --verify --quiet 'origin/f29^{commit}'"},
		{"resolve a hostile ref", ResolveCmd("/x", "a'b;rm"), `git -C /x rev-parse --verify --quiet 'a'\''b;rm^{commit}'`},
		{"create", CreateBranchCmd("/x", "f29", "abc1234"), "git -C /x checkout -b f29 abc1234"},
		{"fast-forward", FastForwardCmd("/x", "lab/f29", "origin/lab/f29"), "git -C /x checkout lab/f29 && git -C /x merge --ff-only origin/lab/f29"},
		{"head", HeadCmd("/root/nb hosting"), "git -C '/root/nb hosting' rev-parse --verify HEAD"},
		{"dirty", DirtyCmd("/root/nbhosting", "nbhosting/nbhosting/sitesettings.py"),
			"git -C /root/nbhosting status --porcelain --untracked-files=no -- . ':(exclude)nbhosting/nbhosting/sitesettings.py'"},
		{"dirty, settings elsewhere", DirtyCmd("/root/nbhosting", ""), "git -C /root/nbhosting status --porcelain --untracked-files=no"},
		{"settings inside", SettingsInCheckout("/root/nbhosting/", "/root/nbhosting/nbhosting/sitesettings.py"), "nbhosting/sitesettings.py"},
		{"settings outside", SettingsInCheckout("/root/nbhosting", "/root/nbhosting2/sitesettings.py"), ""},
	} {
		if c.got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, c.got, c.want)
		}
	}
	d := BranchAt("upgrade-prod/devel-branch", BranchParams{Box: "thurst", Checkout: "/root/nbhosting", Branch: "f29",
		StartFact: "thermals/head", From: Remote{Host: "thermals", Checkout: "/root/nbhosting"}}).Describe()
	if !strings.Contains(d.Commands[0], "fetch --quiet ssh://root@thermals:22/root/nbhosting '<thermals/head>'") ||
		d.Commands[2] != "git -C /root/nbhosting checkout -b f29 '<thermals/head>'" {
		t.Errorf("upgrade-prod commands %q", d.Commands)
	}
}

// The devel branch is made at what origin has now, not the stale local
// state: a commit pushed upstream after the clone is in it.
func TestBranchFetchesFirst(t *testing.T) {
	ctx := context.Background()
	dir := gitRepo(t)
	up := gitT(t, dir, "remote", "get-url", "origin")
	other := filepath.Join(t.TempDir(), "other")
	gitT(t, "", "clone", "-q", "-b", "f29", up, other)
	gitT(t, other, "commit", "-q", "--allow-empty", "-m", "a fix validated upstream")
	gitT(t, other, "push", "-q", "origin", "f29")
	fix := gitT(t, other, "rev-parse", "HEAD")
	te := newEnv(map[string]boxes.Runner{"b": newShRunner(t)})
	s := Branch("id", "b", dir, "f29")
	if err := s.Apply(ctx, te.Env); err != nil {
		t.Fatal(err)
	}
	if got := gitT(t, dir, "rev-parse", "HEAD"); got != fix || currentBranch(t, dir) != "f29" {
		t.Fatalf("HEAD %s on %s, want %s on f29", got, currentBranch(t, dir), fix)
	}
	if done, why, err := s.Check(ctx, te.Env); !done || err != nil {
		t.Fatalf("check: %v %s %v", done, why, err)
	}
	// Another fix upstream: the existing branch is fast-forwarded.
	gitT(t, other, "commit", "-q", "--allow-empty", "-m", "another")
	gitT(t, other, "push", "-q", "origin", "f29")
	if err := s.Apply(ctx, te.Env); err != nil {
		t.Fatal(err)
	}
	if gitT(t, dir, "rev-parse", "HEAD") != gitT(t, other, "rev-parse", "HEAD") {
		t.Fatal("not fast-forwarded")
	}
	// A local branch with commits of its own is refused, not reset.
	gitT(t, dir, "commit", "-q", "--allow-empty", "-m", "local only")
	gitT(t, other, "commit", "-q", "--allow-empty", "-m", "third")
	gitT(t, other, "push", "-q", "origin", "f29")
	if err := s.Apply(ctx, te.Env); err == nil || !strings.Contains(err.Error(), "cannot be fast-forwarded") {
		t.Fatalf("diverged: %v", err)
	}
}

func TestBranchConfiguredRefAndNoOrigin(t *testing.T) {
	ctx := context.Background()
	dir := gitRepo(t)
	master := gitT(t, dir, "rev-parse", "origin/master")
	te := newEnv(map[string]boxes.Runner{"b": newShRunner(t)})
	s := BranchAt("id", BranchParams{Box: "b", Checkout: dir, Branch: "f29", Start: "origin/master"})
	if err := s.Apply(ctx, te.Env); err != nil {
		t.Fatal(err)
	}
	if gitT(t, dir, "rev-parse", "HEAD") != master {
		t.Fatal("not at the configured ref")
	}
	gitT(t, dir, "remote", "remove", "origin")
	s = BranchAt("id", BranchParams{Box: "b", Checkout: dir, Branch: "f31", Start: "origin/f31"})
	if err := s.Apply(ctx, te.Env); !errors.Is(err, ErrPrecondition) || !strings.Contains(err.Error(), "upgrade.devel_ref") {
		t.Fatalf("no origin: %v", err)
	}
}

func TestCleanCheckout(t *testing.T) {
	ctx := context.Background()
	dir := gitRepo(t)
	mustWrite(t, filepath.Join(dir, "nbhosting", "sitesettings.py"), "server_name = 'a'\n")
	gitT(t, dir, "add", "-A")
	gitT(t, dir, "commit", "-q", "-m", "settings tracked")
	te := newEnv(map[string]boxes.Runner{"b": newShRunner(t)})
	s := CleanCheckout("id", "b", dir, filepath.Join(dir, "nbhosting", "sitesettings.py"))
	mustWrite(t, filepath.Join(dir, "nbhosting", "sitesettings.py"), "server_name = 'b'\n")
	mustWrite(t, filepath.Join(dir, "untracked.txt"), "x\n")
	if err := s.Apply(ctx, te.Env); err != nil {
		t.Fatalf("settings edits and untracked files are not local edits: %v", err)
	}
	mustWrite(t, filepath.Join(dir, "README"), "edited\n")
	err := s.Apply(ctx, te.Env)
	if !errors.Is(err, ErrPrecondition) || !strings.Contains(err.Error(), "README") || strings.Contains(err.Error(), "sitesettings") {
		t.Fatalf("dirty: %v", err)
	}
	if done, why, _ := s.Check(ctx, te.Env); done || !strings.Contains(why, "README") {
		t.Fatalf("check: %v %s", done, why)
	}
}

// Each box is a shell runner in its own folder holding a clone named
// nbhosting of one upstream: the checkout path is the same on both boxes.
func TestSameCodeGuard(t *testing.T) {
	ctx := context.Background()
	dir := gitRepo(t)
	up := gitT(t, dir, "remote", "get-url", "origin")
	thurst, thermals := newShRunner(t), newShRunner(t)
	gitT(t, "", "clone", "-q", "-b", "f29", up, filepath.Join(thurst.dir, "nbhosting"))
	gitT(t, "", "clone", "-q", "-b", "f29", up, filepath.Join(thermals.dir, "nbhosting"))
	te := newEnv(map[string]boxes.Runner{"thurst": thurst, "thermals": thermals})
	s := SameCode("switch-back/preflight/same-code", "thurst", "thermals", "nbhosting")
	if err := s.Apply(ctx, te.Env); err != nil {
		t.Fatalf("same commit: %v", err)
	}
	if done, _, err := s.Check(ctx, te.Env); !done || err != nil {
		t.Fatalf("check, same commit: %v %v", done, err)
	}
	gitT(t, filepath.Join(thermals.dir, "nbhosting"), "commit", "-q", "--allow-empty", "-m", "validated on thermals")
	err := s.Apply(ctx, te.Env)
	if !errors.Is(err, ErrRefused) || !strings.Contains(Detail(err), "--force checkout") || !strings.Contains(err.Error(), "nothing was stopped") {
		t.Fatalf("refusal: %v", err)
	}
	if done, _, _ := s.Check(ctx, te.Env); done {
		t.Fatal("check passes a different commit")
	}
	te.Force = map[Guard]bool{ForceCheckout: true}
	if err := s.Apply(ctx, te.Env); err != nil {
		t.Fatalf("forced: %v", err)
	}
	if len(te.progress) == 0 || !strings.Contains(strings.Join(te.progress, "\n"), "guard checkout overridden") {
		t.Fatalf("override not said: %q", te.progress)
	}
}

func TestRecordHead(t *testing.T) {
	ctx := context.Background()
	dir := gitRepo(t)
	te := newEnv(map[string]boxes.Runner{"thermals": newShRunner(t)})
	s := RecordHead("upgrade-prod/record-code", "thermals", dir, "thermals/head")
	if err := s.Apply(ctx, te.Env); err != nil {
		t.Fatal(err)
	}
	first, _ := te.facts.Get("thermals/head")
	if first != gitT(t, dir, "rev-parse", "HEAD") {
		t.Fatalf("fact %q", first)
	}
	gitT(t, dir, "commit", "-q", "--allow-empty", "-m", "later")
	if err := s.Apply(ctx, te.Env); err != nil {
		t.Fatal(err)
	}
	if again, _ := te.facts.Get("thermals/head"); again != first {
		t.Fatal("a resume read the commit again")
	}
	if err := s.Undo(ctx, te.Env); err != nil {
		t.Fatal(err)
	}
	if _, ok := te.facts.Get("thermals/head"); ok {
		t.Fatal("undo kept the fact")
	}
}
