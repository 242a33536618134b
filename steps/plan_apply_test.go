package steps

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"boxswap/boxes"
)

// planned matches a command Describe lists, a <placeholder> standing for
// what the box answers at run time.
func planned(cmds []string) []*regexp.Regexp {
	var out []*regexp.Regexp
	for _, c := range cmds {
		parts := placeholderRE.Split(c, -1)
		for i, p := range parts {
			parts[i] = regexp.QuoteMeta(p)
		}
		out = append(out, regexp.MustCompile(`^(?s)`+strings.Join(parts, `.*`)+`$`))
	}
	return out
}

func matchesOne(res []*regexp.Regexp, cmd string) bool {
	for _, re := range res {
		if re.MatchString(cmd) {
			return true
		}
	}
	return false
}

// kinds builds every step kind with v in each value from boxes.yaml.
func kinds(v string) map[string]Step { return kindsOn(v, "a", "b") }

// kindsOn is kinds on boxes a and b (b the one most kinds run on).
func kindsOn(v, a, b string) map[string]Step {
	p := SyncParams{Src: a, Dst: b, DstHost: "h", DstUser: "root", Folder: v, Root: "/nbhosting", SrcUnit: "u", MaxDelete: 10}
	pf := p
	pf.Folder, pf.File, pf.Exclude, pf.Address, pf.Final = "db.sqlite3", true, []string{v}, v, true
	pip := PipParams{Python: "python3", Pip: "python3 -m pip"}
	mux := p
	mux.Mux, mux.Passes = true, 3
	final := mux
	final.Final, final.Passes = true, 1
	return map[string]Step{
		"AptSources":        AptSources("i", b, AptSourcesParams{From: "bookworm", To: "trixie", Keep: []string{v}}),
		"AptUpdate":         AptUpdate("i", b, 13),
		"AptUpgrade":        AptUpgrade("i", b, 13, "trixie", []string{v}),
		"Branch":            Branch("i", b, v, "f29"),
		"BranchAtFact":      BranchAt("i", BranchParams{Box: b, Checkout: v, Branch: "f29", StartFact: a + "/head", From: Remote{Host: "h", Checkout: v}}),
		"RecordHead":        RecordHead("i", b, v, b+"/head"),
		"CleanCheckout":     CleanCheckout("i", b, v, v+"/settings.py"),
		"SameCode":          SameCode("i", b, a, v),
		"Reachable":         Reachable("i", b),
		"FreeDisk":          FreeDisk("i", b, []string{v}, 1),
		"CleanupContainers": CleanupContainers("i", b),
		"Command":           Command("i", b, "hook", "echo "+quote(v), "test -e "+quote(v), "rm -f -- "+quote(v)),
		"Install":           Install("i", b, "install", "cd "+quote(v)+" && ./install.sh"),
		"DnfUpgrade":        DnfUpgrade("i", b, 29),
		"DnfInstall":        DnfInstall("i", b, v, 29),
		"DnfDownload":       DnfDownload("i", b, 29, []string{v}),
		"OSRelease":         OSRelease("i", b, 29, v),
		"ReleaseIn":         ReleaseIn("i", b, []int{27, 29}, v),
		"PipSnapshot":       PipSnapshot("i", b, pip),
		"PipReinstall":      PipReinstall("i", b, pip),
		"PkgHealth":         PkgHealth("i", b, PkgManager{Name: "dnf", Health: "rpm --verifydb", Recover: "rpm --rebuilddb", Manual: "check " + v}),
		"Reboot":            Reboot("i", b, RebootParams{Command: "reboot", Into: "f29", Timeout: 50 * time.Millisecond, Poll: 10 * time.Millisecond}),
		"Rename":            Rename("i", b, "/nbhosting", v, ".prod"),
		"StartServices":     StartServices("i", b, []string{"docker", v}),
		"StopServices":      StopServices("i", b, []string{"docker", v}),
		"Settings":          Settings("i", b, "/x/"+v, prodLines, ""),
		"RecordStatus":      RecordStatus("i", b, []string{v}),
		"Sync":              Sync("i", p),
		"SyncFile":          Sync("i", pf),
		"SyncMux":           Sync("i", mux),
		"SyncFinalMux":      withFacts{Sync("i", final), map[string]string{final.countedKey(): "1 passes", final.watchKey(): "src=" + strings.Repeat("ab", 12) + " dst=" + strings.Repeat("cd", 12)}},
		"UnitUp":            UnitUp("i", b, v),
		"UnitDown":          UnitDown("i", b, v),
		"UnitState":         UnitState("i", b, v, true, true),
		"AppCheck":          AppCheck("i", b, CheckParams{Name: v, Path: "/" + v, Status: 200, Text: v, Timeout: time.Second, CA: v, Connect: "127.0.0.1"}),
		"ProductionCheck":   ProductionCheck("i", a, b, v, "w", CheckParams{Name: v, Path: "/", Status: 200, Timeout: time.Second, Insecure: true}),
		"ReleaseAddress":    ReleaseAddress("i", b, v, v, []string{a, b}),
		"VerifyAddress":     VerifyAddress("i", b, a, v, v),
		"StopWritersDocker": StopWriters("i", b, []string{v}, "docker"),
		"StopWritersPodman": StopWriters("i", b, []string{v}, "podman"),
	}
}

// withFacts is a step run after what its earlier steps left (a final
// sync after its pre-sync).
type withFacts struct {
	Step
	facts map[string]string
}

func (w withFacts) Apply(ctx context.Context, env *Env) error {
	for k, v := range w.facts {
		env.Facts.Set(k, v)
	}
	return w.Step.Apply(ctx, env)
}

// queries are the read-only commands a step may send besides those plan
// shows (a detached run's state, a unit's status for an error message, the
// paths a rename finds): built by the same functions the steps use.
func queries(v string, s Step) []string {
	d := detached{box: "b", unit: UnitName("i")}
	q := []string{statusCmd(v), isActiveCmd(v), d.queryCmd(), d.followCmd(), Rpm.Health, Dpkg.Health,
		aptSourcesCheckCmd(AptSourcesParams{From: "bookworm", To: "trixie", Keep: []string{v}})}
	if r, ok := s.(*renameStep); ok {
		q = append(q, r.probeCmd())
	}
	return q
}

// Issue 11, item 4: what plan prints is what Apply and Undo send. Each
// kind runs against a box that answers every command with success and no
// output (far enough for most kinds to send their change); every command
// sent must be one Describe listed, or one of the read-only queries,
// hostile values and all.
func TestPlanIsWhatApplySends(t *testing.T) {
	reached := map[string]bool{}
	for _, v := range append([]string{"plain"}, hostile...) {
		for name, s := range kinds(v) {
			d := s.Describe()
			for what, run := range map[string]func(context.Context, *Env) error{"apply": s.Apply, "undo": s.Undo} {
				shown := d.Commands
				if what == "undo" {
					shown = d.Undo
				}
				res, q := planned(shown), queries(v, s)
				for _, c := range sentBy(run) {
					switch {
					case matchesOne(res, c) || startsPlanned(c, shown):
						reached[name] = reached[name] || what == "apply"
					case slices.Contains(q, c):
					default:
						t.Errorf("%s %q: %s sent a command plan does not show:\n  %s\nplan shows:\n  %s", name, v, what, c, strings.Join(shown, "\n  "))
					}
				}
			}
		}
	}
	for name := range kinds("plain") {
		if !reached[name] {
			t.Errorf("%s sent none of the commands plan shows: the test box does not take it far enough", name)
		}
	}
}

// startsPlanned reports a detached run's start (steps/detached.go) of a
// command plan shows: as it is (Install), or as the detached run shows it
// (detached.shown), <placeholders> (PipReinstall's packages) standing for
// what the box answers at run time. The start is startCmd of that run,
// with a token.
func startsPlanned(c string, shown []string) bool {
	d := detached{box: "b", unit: UnitName("i")}
	if !strings.HasPrefix(c, "set -e; d="+quote(d.dir())+"; rm -rf") {
		return false
	}
	c = tokenRE.ReplaceAllString(withoutDescription(c), "TOKEN")
	for _, p := range shown {
		d.cmd = p
		if inner, ok := strings.CutPrefix(p, detached{unit: d.unit}.shown()); ok {
			d.cmd = inner
		}
		// Placeholders become a mark quoting leaves as it is, then .* in
		// the start's pattern: only those, not the start's own < and >.
		d.cmd = placeholderRE.ReplaceAllString(d.cmd, "\x00")
		parts := strings.Split(withoutDescription(d.startCmd("TOKEN")), "\x00")
		for i, part := range parts {
			parts[i] = regexp.QuoteMeta(part)
		}
		if regexp.MustCompile(`^(?s)` + strings.Join(parts, `.*`) + `$`).MatchString(c) {
			return true
		}
	}
	return false
}

// placeholderRE matches a <placeholder>, with the quotes quote put around
// it when plan quotes it as a word: the value it stands for may need none
// (a commit).
var placeholderRE = regexp.MustCompile(`'?<[^<>]*>'?`)

// withoutDescription drops a start's unit description: the label is in the
// start only there.
func withoutDescription(c string) string {
	if i := strings.Index(c, " --description="); i >= 0 {
		if j := strings.Index(c[i:], " --setenv="); j >= 0 {
			return c[:i] + c[i+j:]
		}
	}
	return c
}

var tokenRE = regexp.MustCompile(`[0-9]{8}T[0-9]{6}Z-[0-9a-f]{16}`)

// boxAnswer is a box far enough from done that a step changes it: a
// detached run not started, a folder to rename, a unit active, data to
// sync, a settings file to rewrite; anything else succeeds silently.
func boxAnswer(cmd string) reply {
	switch {
	case cmd == detached{box: "b", unit: UnitName("i")}.queryCmd():
		return reply{out: "token=\nstarted=\nalive=no\nrc=\n"}
	case strings.HasPrefix(cmd, "if test -e ") && strings.Contains(cmd, "echo src"):
		return reply{out: "src\n"}
	case strings.HasPrefix(cmd, "printf 'unit %s") && strings.Contains(cmd, "; then echo there; "):
		return reply{out: "unit active\nthere\n/nbhosting/x/a\n"} // a sync's guard
	case strings.HasPrefix(cmd, "systemctl is-active"):
		return reply{out: "active\n"}
	case strings.HasPrefix(cmd, "systemctl is-enabled"):
		return reply{out: "enabled\n"}
	case cmd == OSReleaseCommand:
		return reply{out: "NAME=Fedora\nVERSION_ID=27\n"}
	case strings.HasPrefix(cmd, "printf 'unit %s"):
		return reply{out: "unit inactive\ndf Filesystem 1-blocks Used Available Capacity Mounted on\ndf /dev/vda 2000000000 1000000000 999999999 50% /\nentries 0\n"}
	case strings.Contains(cmd, "--dry-run --stats"):
		return reply{out: "Number of files: 3\nNumber of created files: 1\nNumber of deleted files: 0\nNumber of regular files transferred: 1\n"}
	case strings.Contains(cmd, "BOXSWAP_CHANGES_PY\n") && strings.Contains(cmd, " start "):
		return reply{out: "ready 3\n"}
	case strings.HasPrefix(cmd, "s=~/.cache/boxswap/watch-"):
		return reply{out: "ok 3\n"}
	case cmd == "python3 --version":
		return reply{out: "Python 3.12.1\n"}
	case strings.HasSuffix(cmd, " list -v --format=json"):
		return reply{out: "[]\n"}
	case strings.HasPrefix(cmd, "cat -- "):
		return reply{out: "server_name = 'old'\nssl_certificate = '/old.crt'\nssl_certificate_key = '/old.key'\n"}
	}
	return reply{}
}

// sentBy runs a step's Apply or Undo against boxes that answer as
// boxAnswer, and returns what it sent.
func sentBy(run func(context.Context, *Env) error) []string {
	r := &fakeRunner{script: boxAnswer}
	te := newEnv(map[string]boxes.Runner{"a": r, "b": r})
	te.Approve = func(context.Context, string, string) (string, error) { return "tester", nil }
	te.facts.m["b/python3"], te.facts.m["b/pip-freeze"] = "3.11", "numpy==1.26.4\n" // a snapshot before the upgrade
	te.facts.m["a/head"] = "0123456789abcdef0123456789abcdef01234567"               // the commit the other box runs (BranchAtFact)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_ = run(ctx, te.Env)
	return r.sent()
}

// kinds has every step kind: each exported function of the package that
// returns a Step is called there, but those whose steps send no command
// to a box (gates, a stamp) and Release (OSRelease's other name).
func TestKindsHasEveryStepKind(t *testing.T) {
	noCommand := map[string]bool{"Gate": true, "GateSince": true, "Stamp": true, "Release": true}
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctors, called := map[string]bool{}, map[string]bool{}
	for name, f := range pkgs["steps"].Files {
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok {
				continue
			}
			if fn.Name.Name == "kindsOn" && strings.HasSuffix(name, "plan_apply_test.go") {
				ast.Inspect(fn.Body, func(n ast.Node) bool {
					if c, ok := n.(*ast.CallExpr); ok {
						if id, ok := c.Fun.(*ast.Ident); ok {
							called[id.Name] = true
						}
					}
					return true
				})
			}
			res := fn.Type.Results
			if fn.Recv == nil && fn.Name.IsExported() && !strings.HasSuffix(name, "_test.go") && res != nil && len(res.List) == 1 {
				if id, ok := res.List[0].Type.(*ast.Ident); ok && id.Name == "Step" && !noCommand[fn.Name.Name] {
					ctors[fn.Name.Name] = true
				}
			}
		}
	}
	for c := range ctors {
		if !called[c] {
			t.Errorf("kinds does not build a %s step: what plan shows of it is not checked against what it sends", c)
		}
	}
	if len(ctors) < 30 {
		t.Errorf("found only %d step kinds: %v", len(ctors), ctors)
	}
}
