package steps

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"boxswap/internal/text"
)

// BranchParams says where the devel branch is made.
type BranchParams struct {
	Box, Checkout, Branch string
	// Start is the ref or commit the branch is created at, after a fetch
	// from origin (upgrade-dev: origin/<branch>, or upgrade.devel_ref).
	Start string
	// StartFact, when set, names the fact holding the commit to branch at
	// (upgrade-prod: the commit the other box runs, read at run time);
	// the commit is fetched from From instead of origin.
	StartFact string
	From      Remote
}

// Remote is a box another box fetches from over ssh, box to box.
type Remote struct {
	Host, User string
	Port       int
	Checkout   string
}

// URL is the ssh URL of r's checkout.
func (r Remote) URL() string {
	port := r.Port
	if port == 0 {
		port = 22
	}
	user := r.User
	if user == "" {
		user = "root"
	}
	return "ssh://" + user + "@" + r.Host + ":" + strconv.Itoa(port) + r.Checkout
}

type branchStep struct {
	base
	p BranchParams
}

// Branch creates and checks out the devel branch at origin/<branch>.
func Branch(id, box, checkout, branch string) Step {
	return BranchAt(id, BranchParams{Box: box, Checkout: checkout, Branch: branch, Start: "origin/" + branch})
}

// BranchAt fetches, then creates and checks out the devel branch at the
// start commit (an existing branch is checked out and fast-forwarded to
// it; one that diverged is refused), remembering the branch it was on
// (fact BOX/branch-before) and whether it created the branch (fact
// BOX/branch-created), so Undo goes back there and deletes only a branch
// it made.
func BranchAt(id string, p BranchParams) Step {
	s := &branchStep{p: p}
	start, at := p.Start, p.Start
	if p.StartFact != "" {
		start = "<" + p.StartFact + ">"
		// The fact is BOX/code (RecordHead's): say it in words.
		src, _, _ := strings.Cut(p.StartFact, "/")
		at = "the commit " + src + " runs"
	}
	s.base = base{id: id, desc: Description{
		Box:   p.Box,
		Text:  fmt.Sprintf("fetch, then create and check out branch %s at %s in %s on %s", p.Branch, at, p.Checkout, p.Box),
		Retry: true,
		Commands: []string{
			s.fetchCmd(start),
			ResolveCmd(p.Checkout, start),
			CreateBranchCmd(p.Checkout, p.Branch, start),
		},
		Undo: []string{
			gitCmd(p.Checkout, "checkout <branch before>"),
			gitCmd(p.Checkout, "branch -D "+quote(p.Branch)),
		},
	}}
	return s
}

func gitCmd(checkout, args string) string { return "git -C " + quote(checkout) + " " + args }

// FetchOriginCmd fetches origin's branches when the checkout has an origin.
func FetchOriginCmd(checkout string) string {
	return "if " + gitCmd(checkout, "remote get-url origin") + " >/dev/null 2>&1; then " +
		gitCmd(checkout, "fetch --quiet origin") + "; else echo 'no remote origin: nothing fetched'; fi"
}

// FetchCommitCmd fetches one commit from another box's checkout over
// ssh, box to box (host keys checked, no prompt).
func FetchCommitCmd(checkout string, from Remote, commit string) string {
	ssh := "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes"
	return "git -C " + quote(checkout) + " -c " + quote("core.sshCommand="+ssh) +
		" fetch --quiet " + quote(from.URL()) + " " + quote(commit)
}

// ResolveCmd prints the commit start names in checkout.
func ResolveCmd(checkout, start string) string {
	return gitCmd(checkout, "rev-parse --verify --quiet "+quote(start+"^{commit}"))
}

// CreateBranchCmd creates branch at commit and checks it out.
func CreateBranchCmd(checkout, branch, commit string) string {
	return gitCmd(checkout, "checkout -b "+quote(branch)+" "+quote(commit))
}

// FastForwardCmd checks out an existing branch and moves it to commit,
// refusing (git's own refusal) when it has commits of its own.
func FastForwardCmd(checkout, branch, commit string) string {
	return gitCmd(checkout, "checkout "+quote(branch)) + " && " + gitCmd(checkout, "merge --ff-only "+quote(commit))
}

func (s *branchStep) fetchCmd(commit string) string {
	if s.p.StartFact != "" {
		return FetchCommitCmd(s.p.Checkout, s.p.From, commit)
	}
	return FetchOriginCmd(s.p.Checkout)
}

func (s *branchStep) git(args string) string { return gitCmd(s.p.Checkout, args) }

func (s *branchStep) beforeKey() string  { return s.p.Box + "/branch-before" }
func (s *branchStep) createdKey() string { return s.p.Box + "/branch-created" }

// current returns the checked-out branch, or the commit when detached.
func (s *branchStep) current(ctx context.Context, env *Env) (string, error) {
	res, err := execute(ctx, env, s.p.Box, "reading the branch checked out in "+s.p.Checkout, s.git("symbolic-ref --short -q HEAD"), false)
	if err != nil {
		return "", err
	}
	if res.Exit == 0 {
		return firstLine(res.Stdout), nil
	}
	return s.head(ctx, env)
}

func (s *branchStep) head(ctx context.Context, env *Env) (string, error) {
	res, err := run(ctx, env, s.p.Box, "reading the commit checked out in "+s.p.Checkout, s.git("rev-parse --verify HEAD"), false)
	if err != nil {
		return "", err
	}
	return firstLine(res.Stdout), nil
}

// resolve returns the commit start names on the box, "" when unknown.
func (s *branchStep) resolve(ctx context.Context, env *Env, start string) (string, error) {
	res, err := execute(ctx, env, s.p.Box, "resolving "+start+" in "+s.p.Checkout, ResolveCmd(s.p.Checkout, start), false)
	if err != nil || res.Exit != 0 {
		return "", err
	}
	return firstLine(res.Stdout), nil
}

// start returns the ref or commit to branch at.
func (s *branchStep) start(env *Env) (string, error) {
	if s.p.StartFact == "" {
		return s.p.Start, nil
	}
	f, err := facts(env)
	if err != nil {
		return "", err
	}
	c, ok := f.Get(s.p.StartFact)
	if !ok || !isCommit(c) {
		return "", fmt.Errorf("%s: no commit recorded in %s (the step that reads it did not run): %w", s.p.Box, s.p.StartFact, ErrPrecondition)
	}
	return c, nil
}

func isCommit(s string) bool {
	return len(s) >= 7 && len(s) <= 64 && strings.Trim(s, "0123456789abcdef") == ""
}

func (s *branchStep) exists(ctx context.Context, env *Env) (bool, error) {
	res, err := execute(ctx, env, s.p.Box, "looking for branch "+s.p.Branch, s.git("rev-parse --verify --quiet "+quote("refs/heads/"+s.p.Branch)), false)
	if err != nil {
		return false, err
	}
	return res.Exit == 0, nil
}

// validName refuses names git would read as options.
func validName(name string) error {
	if name == "" || strings.HasPrefix(name, "-") || strings.ContainsAny(name, " \t\n") {
		return fmt.Errorf("%q is not a usable branch name", clip(name))
	}
	return nil
}

func (s *branchStep) Check(ctx context.Context, env *Env) (bool, string, error) {
	cur, err := s.current(ctx, env)
	if err != nil {
		return false, "", err
	}
	if cur != s.p.Branch {
		return false, fmt.Sprintf("%s is on %s", s.p.Checkout, cur), nil
	}
	start, err := s.start(env)
	if err != nil {
		return false, "", err
	}
	want, err := s.resolve(ctx, env, start)
	if err != nil {
		return false, "", err
	}
	head, err := s.head(ctx, env)
	if err != nil {
		return false, "", err
	}
	return head == want, fmt.Sprintf("%s is on %s at %s (%s is %s)", s.p.Checkout, cur, short(head), start, short(want)), nil
}

func short(c string) string {
	if c == "" {
		return "unknown"
	}
	return c[:min(len(c), 12)]
}

func (s *branchStep) Apply(ctx context.Context, env *Env) error {
	if err := validName(s.p.Branch); err != nil {
		return fmt.Errorf("%s: %w: fix upgrade.devel_branch in boxes.yaml", s.p.Box, err)
	}
	commit, err := s.fetch(ctx, env)
	if err != nil {
		return err
	}
	cur, err := s.current(ctx, env)
	if err != nil {
		return err
	}
	if err := s.remember(env, cur); err != nil {
		return err
	}
	exists, err := s.exists(ctx, env)
	if err != nil {
		return err
	}
	if exists {
		if _, err := stream(ctx, env, s.p.Box, "fast-forwarding branch "+s.p.Branch, FastForwardCmd(s.p.Checkout, s.p.Branch, commit), false); err != nil {
			return fmt.Errorf("%s: branch %s exists and cannot be fast-forwarded to %s (it has commits of its own?): %w; rename it, or merge by hand and resume",
				s.p.Box, s.p.Branch, short(commit), err)
		}
		return nil
	}
	// Recorded before creating, so an interrupted Apply still lets Undo
	// delete the branch it made.
	f, err := facts(env)
	if err != nil {
		return err
	}
	if err := f.Set(s.createdKey(), s.p.Branch); err != nil {
		return fmt.Errorf("%s: recording the branch: %w", s.p.Box, err)
	}
	_, err = stream(ctx, env, s.p.Box, "creating branch "+s.p.Branch, CreateBranchCmd(s.p.Checkout, s.p.Branch, commit), false)
	return err
}

// fetch brings the start commit into the checkout and returns it.
func (s *branchStep) fetch(ctx context.Context, env *Env) (string, error) {
	start, err := s.start(env)
	if err != nil {
		return "", err
	}
	if _, err := stream(ctx, env, s.p.Box, "fetching "+start+" into "+s.p.Checkout, s.fetchCmd(start), false); err != nil {
		return "", err
	}
	commit, err := s.resolve(ctx, env, start)
	if err != nil {
		return "", err
	}
	if commit == "" {
		return "", fmt.Errorf("%s: %s names no commit in %s after the fetch (origin unset? not upstream?): %w; set upgrade.devel_ref",
			s.p.Box, text.Cut(start, 16), s.p.Checkout, ErrPrecondition)
	}
	return commit, nil
}

// remember records the branch the checkout was on, once.
func (s *branchStep) remember(env *Env, cur string) error {
	f, err := facts(env)
	if err != nil {
		return err
	}
	if _, ok := f.Get(s.beforeKey()); ok || cur == s.p.Branch {
		return nil
	}
	if err := f.Set(s.beforeKey(), cur); err != nil {
		return fmt.Errorf("%s: recording the branch: %w", s.p.Box, err)
	}
	return nil
}

func (s *branchStep) Undo(ctx context.Context, env *Env) error {
	f, err := facts(env)
	if err != nil {
		return err
	}
	before, ok := f.Get(s.beforeKey())
	if !ok {
		return nil // Apply never started
	}
	if err := validName(before); err != nil {
		return fmt.Errorf("%s: %s was on %w before: check it out by hand", s.p.Box, s.p.Checkout, err)
	}
	cur, err := s.current(ctx, env)
	if err != nil {
		return err
	}
	if cur != before {
		if _, err := stream(ctx, env, s.p.Box, "checking out "+before+" again", s.git("checkout "+quote(before)), false); err != nil {
			return err
		}
	}
	if err := s.deleteCreated(ctx, env, f); err != nil {
		return err
	}
	return f.Delete(s.beforeKey())
}

func (s *branchStep) deleteCreated(ctx context.Context, env *Env, f Facts) error {
	if created, _ := f.Get(s.createdKey()); created != s.p.Branch {
		return nil
	}
	exists, err := s.exists(ctx, env)
	if err != nil {
		return err
	}
	if exists {
		if _, err := stream(ctx, env, s.p.Box, "deleting branch "+s.p.Branch, s.git("branch -D "+quote(s.p.Branch)), false); err != nil {
			return err
		}
	}
	return f.Delete(s.createdKey())
}
