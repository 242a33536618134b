// Package statetest is the suite every state backend must pass (as
// restic's backend tests): state.Backend's contract, checked the same way
// on bbolt (state's tests) and on a real etcd server (etcdstate's tests).
package statetest

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"boxswap/state"
)

// Kit is what the suite needs of a backend.
type Kit struct {
	// New returns a fresh, empty state, and a function that opens another
	// handle on that same state, as another boxswap process would.
	New func(t *testing.T) (state.Backend, func() state.Backend)
	// SetSchema writes schema version n into the state behind the
	// backend's back.
	SetSchema func(t *testing.T, b state.Backend, n int)
	// DamageMeta writes a meta record that is not JSON.
	DamageMeta func(t *testing.T, b state.Backend)
	// Edit rewrites one record behind the backend's back, as a disk or a
	// hand would: record is "meta", or "attempt", "summary", "history" or
	// "approval" (each the first); edit gets its bytes and returns the new
	// ones.
	Edit func(t *testing.T, b state.Backend, record string, edit func([]byte) []byte)
	// Expire, for a fencing backend, ends the lease behind lock as an
	// expiry would (nil when the backend does not fence).
	Expire func(t *testing.T, lock state.OperatorLock)
}

// Run runs the whole suite.
func Run(t *testing.T, k Kit) {
	for _, c := range []struct {
		name string
		fn   func(*testing.T, Kit)
	}{
		{"Fresh", testFresh},
		{"Attempts", testAttempts},
		{"Tails", testTails},
		{"SetPhase", testSetPhase},
		{"Facts", testFacts},
		{"MarkDone", testMarkDone},
		{"HistoryApprovals", testHistoryApprovals},
		{"InitKeeps", testInitKeeps},
		{"NewerSchema", testNewerSchema},
		{"Corrupt", testCorrupt},
		{"OneByte", testOneByte},
		{"Lock", testLock},
		{"ConcurrentWrites", testConcurrentWrites},
		{"Fencing", testFencing},
		{"DumpLoad", testDumpLoad},
	} {
		if c.name == "Fencing" && k.Expire == nil {
			t.Log("Fencing: not run, this backend does not fence (its lock ends only with its holder)")
			continue
		}
		t.Run(c.name, func(t *testing.T) { c.fn(t, k) })
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func threeSteps() *state.Attempt {
	return &state.Attempt{Event: "redirect", From: "dev-upgraded", Command: "next", Cycle: 1,
		Configs: []string{"boxes: {}\n"},
		Steps: []state.StepRecord{
			{ID: "redirect/sync/students", Box: "thurst", Text: "rsync"},
			{ID: "redirect/release-address/thurst", Box: "thurst"},
			{ID: "redirect/take-address/thermals", Box: "thermals", Status: state.StepDone},
		}}
}

func testFresh(t *testing.T, k Kit) {
	b, _ := k.New(t)
	m, err := b.Meta()
	must(t, err)
	if want := (state.Meta{Schema: state.SchemaVersion, Phase: state.StartPhase}); m != want {
		t.Errorf("Meta() = %+v, want %+v", m, want)
	}
	if a, err := b.Last(); err != nil || a != nil {
		t.Errorf("Last() = %v, %v; want nil, nil", a, err)
	}
	for name, n := range map[string]func() (int, error){
		"Attempts":  func() (int, error) { l, err := b.Attempts(); return len(l), err },
		"Summaries": func() (int, error) { l, err := b.Summaries(); return len(l), err },
		"History":   func() (int, error) { l, err := b.History(); return len(l), err },
		"Approvals": func() (int, error) { l, err := b.Approvals(); return len(l), err },
		"Facts":     func() (int, error) { l, err := b.Facts(""); return len(l), err },
	} {
		if got, err := n(); err != nil || got != 0 {
			t.Errorf("%s() = %d records, %v; want none", name, got, err)
		}
	}
	if _, err := b.Attempt(1); !errors.Is(err, state.ErrNoAttempt) {
		t.Errorf("Attempt(1) = %v, want ErrNoAttempt", err)
	}
	if v, ok, err := b.Fact("python"); v != "" || ok || err != nil {
		t.Errorf("Fact() = %q, %v, %v", v, ok, err)
	}
	must(t, b.DeleteFact("python"))
	must(t, b.Verify())
	if h, alive, err := b.ReadLock(); h != nil || alive || err != nil {
		t.Errorf("ReadLock() = %v, %v, %v; want free", h, alive, err)
	}
	if b.Path() == "" {
		t.Error("Path() is empty")
	}
}

func testAttempts(t *testing.T, k Kit) {
	b, other := k.New(t)
	a := threeSteps()
	id, err := b.Begin(a)
	must(t, err)
	if id != 1 || a.ID != 1 || a.Status != state.Running || a.Started.IsZero() {
		t.Fatalf("Begin: id %d, %+v", id, a)
	}
	if a.Steps[0].Status != state.Pending || a.Steps[2].Status != state.StepDone {
		t.Errorf("Begin set the steps to %s, %s; want pending and done kept", a.Steps[0].Status, a.Steps[2].Status)
	}
	id2, err := b.Begin(&state.Attempt{Event: "upgrade-prod", From: "redirected", Command: "next"})
	must(t, err)
	if id2 != 2 {
		t.Errorf("second Begin: id %d, want 2", id2)
	}
	must(t, b.UpdateStep(1, "redirect/sync/students", func(r *state.StepRecord) error {
		r.Status, r.Attempts, r.ID = state.StepRunning, 1, "renamed"
		return nil
	}))
	if err := b.UpdateStep(1, "redirect/nope", func(*state.StepRecord) error { return nil }); !errors.Is(err, state.ErrNoStep) {
		t.Errorf("UpdateStep of a missing step = %v, want ErrNoStep", err)
	}
	if err := b.UpdateStep(9, "x", func(*state.StepRecord) error { return nil }); !errors.Is(err, state.ErrNoAttempt) {
		t.Errorf("UpdateStep of a missing attempt = %v, want ErrNoAttempt", err)
	}
	refused := errors.New("refused")
	err = b.UpdateAttempt(1, func(a *state.Attempt) error { a.Status = state.Failed; return refused })
	if !errors.Is(err, refused) {
		t.Errorf("UpdateAttempt = %v, want fn's error", err)
	}
	must(t, b.UpdateAttempt(1, func(a *state.Attempt) error { a.ID, a.Error = 7, "boom"; return nil }))
	checkAttempts(t, b, other())
}

// checkAttempts reads back what testAttempts wrote, through another handle
// too.
func checkAttempts(t *testing.T, b, other state.Backend) {
	got, err := other.Attempt(1)
	must(t, err)
	if got.ID != 1 || got.Status != state.Running || got.Error != "boom" {
		t.Errorf("attempt 1 as another handle reads it: id %d status %s error %q", got.ID, got.Status, got.Error)
	}
	if s := got.Steps[0]; s.ID != "redirect/sync/students" || s.Status != state.StepRunning || s.Attempts != 1 {
		t.Errorf("step 0 = %+v", s)
	}
	if len(got.Configs) != 1 || got.Event != "redirect" || got.Cycle != 1 {
		t.Errorf("attempt 1 lost fields: %+v", got)
	}
	last, err := b.Last()
	must(t, err)
	if last == nil || last.ID != 2 {
		t.Errorf("Last() = %+v, want attempt 2", last)
	}
	all, err := b.Attempts()
	must(t, err)
	from, err := b.AttemptsFrom(2)
	must(t, err)
	sums, err := b.Summaries()
	must(t, err)
	if len(all) != 2 || all[0].ID != 1 || len(from) != 1 || from[0].ID != 2 || len(sums) != 2 {
		t.Fatalf("Attempts %d, AttemptsFrom(2) %d, Summaries %d", len(all), len(from), len(sums))
	}
	if s := sums[0]; s.ID != 1 || s.Steps != 3 || s.Done != 1 || s.Event != "redirect" || s.Error != "boom" {
		t.Errorf("summary 1 = %+v", s)
	}
}

func testTails(t *testing.T, k Kit) {
	b, _ := k.New(t)
	_, err := b.Begin(threeSteps())
	must(t, err)
	var tail []string
	for i := range 30 {
		tail = append(tail, fmt.Sprintf("line %d", i))
	}
	tail[29] = strings.Repeat("é", 2000) + "\rprogress 100%"
	tail[28] = strings.Repeat("x", 5000)
	must(t, b.UpdateStep(1, "redirect/sync/students", func(r *state.StepRecord) error { r.Tail = tail; return nil }))
	a, err := b.Attempt(1)
	must(t, err)
	got := a.Steps[0].Tail
	if len(got) != state.MaxTail || got[0] != "line 10" || got[19] != "progress 100%" || len(got[18]) > 600 {
		t.Errorf("tail not cut to %d lines of a few hundred bytes: %d lines, first %q, last %q, %d bytes",
			state.MaxTail, len(got), got[0], got[len(got)-1], len(got[18]))
	}
}

func testSetPhase(t *testing.T, k Kit) {
	b, _ := k.New(t)
	must(t, b.Init(state.Meta{Phase: "dev-upgraded", Cycle: 1, From: 27, To: 29}))
	_, err := b.Begin(threeSteps())
	must(t, err)
	must(t, b.SetPhase(1, "redirected"))
	m, err := b.Meta()
	must(t, err)
	if m.Phase != "redirected" || m.Cycle != 1 || m.From != 27 || m.To != 29 || m.Schema != state.SchemaVersion || m.Changed.IsZero() {
		t.Errorf("Meta() = %+v", m)
	}
	a, err := b.Attempt(1)
	must(t, err)
	if a.Status != state.Done || a.To != "redirected" || a.Ended.IsZero() {
		t.Errorf("attempt after SetPhase: %s to %s ended %v", a.Status, a.To, a.Ended)
	}
	must(t, b.SetPhase(0, "start"))
	h, err := b.History()
	must(t, err)
	var kinds []string
	for i, e := range h {
		if e.Seq != uint64(i+1) || e.Who == "" || e.Time.IsZero() {
			t.Errorf("event %d = %+v", i, e)
		}
		kinds = append(kinds, e.Kind)
	}
	if got := strings.Join(kinds, ","); got != "begin,done,phase" {
		t.Errorf("history kinds %s, want begin,done,phase", got)
	}
	if !strings.Contains(h[1].Detail, "dev-upgraded -> redirected") || !strings.Contains(h[2].Detail, "(was redirected)") {
		t.Errorf("history details: %q, %q", h[1].Detail, h[2].Detail)
	}
	if err := b.SetPhase(5, "done"); !errors.Is(err, state.ErrNoAttempt) {
		t.Errorf("SetPhase of a missing attempt = %v, want ErrNoAttempt", err)
	}
	if m, _ := b.Meta(); m.Phase != "start" {
		t.Errorf("a refused SetPhase changed the phase to %s", m.Phase)
	}
}

func testFacts(t *testing.T, k Kit) {
	b, _ := k.New(t)
	if err := b.SetFact("", "x"); err == nil {
		t.Error("SetFact with an empty key: no error")
	}
	must(t, b.SetFact("c1/python", "3.9"))
	must(t, b.SetFact("c1/python", "3.11"))
	must(t, b.SetFact("c10/other", "y"))
	must(t, b.SetFact("c2/python", "3.12"))
	if v, ok, err := b.Fact("c1/python"); v != "3.11" || !ok || err != nil {
		t.Errorf("Fact = %q, %v, %v", v, ok, err)
	}
	f, err := b.Facts("c1/")
	must(t, err)
	if len(f) != 1 || f["c1/python"] != "3.11" {
		t.Errorf("Facts(c1/) = %v", f)
	}
	_, err = b.Begin(threeSteps())
	must(t, err)
	must(t, b.SetStepFact(1, "redirect/sync/students", "c1/", "size", "42"))
	if err := b.SetStepFact(1, "redirect/nope", "c1/", "lost", "1"); !errors.Is(err, state.ErrNoStep) {
		t.Errorf("SetStepFact on a missing step = %v, want ErrNoStep", err)
	}
	if _, ok, _ := b.Fact("c1/lost"); ok {
		t.Error("a refused SetStepFact stored its fact: the write was not atomic")
	}
	a, err := b.Attempt(1)
	must(t, err)
	if v, _, _ := b.Fact("c1/size"); v != "42" || a.Steps[0].Facts["size"] != "42" {
		t.Errorf("SetStepFact: fact %q, step facts %v", v, a.Steps[0].Facts)
	}
	must(t, b.DeleteFact("c1/python"))
	if _, ok, _ := b.Fact("c1/python"); ok {
		t.Error("DeleteFact left the fact")
	}
	all, err := b.Facts("")
	must(t, err)
	if len(all) != 3 {
		t.Errorf("Facts() = %v, want 3", all)
	}
}

func testMarkDone(t *testing.T, k Kit) {
	b, _ := k.New(t)
	_, err := b.Begin(threeSteps())
	must(t, err)
	m := state.Mark{Who: "ann@laptop", Reason: "did it by hand", When: time.Now()}
	must(t, b.MarkDone(1, "redirect/sync/students", m))
	if err := b.MarkDone(1, "redirect/take-address/thermals", m); err == nil || !strings.Contains(err.Error(), "already done") {
		t.Errorf("MarkDone of a done step = %v", err)
	}
	if err := b.MarkDone(1, "redirect/nope", m); !errors.Is(err, state.ErrNoStep) {
		t.Errorf("MarkDone of a missing step = %v", err)
	}
	a, err := b.Attempt(1)
	must(t, err)
	s := a.Steps[0]
	if s.Status != state.StepDone || s.Marked == nil || s.Marked.Was != state.Pending || s.Marked.Who != "ann@laptop" {
		t.Errorf("marked step = %+v", s)
	}
	h, err := b.History()
	must(t, err)
	if e := h[len(h)-1]; e.Kind != "mark-done" || e.Who != "ann@laptop" || !strings.Contains(e.Detail, "did it by hand") {
		t.Errorf("last event = %+v", e)
	}
	if len(h) != 2 || a.Steps[2].Marked != nil {
		t.Errorf("the refused MarkDones wrote: %d events (want begin and one mark-done), done step marked %+v", len(h), a.Steps[2].Marked)
	}
}

func testHistoryApprovals(t *testing.T, k Kit) {
	b, _ := k.New(t)
	must(t, b.Approve(state.Approval{Attempt: 1, Gate: "redirect"}))
	must(t, b.Approve(state.Approval{Attempt: 1, Gate: "switch", Who: "bob@host"}))
	ap, err := b.Approvals()
	must(t, err)
	if len(ap) != 2 || ap[0].Who == "" || ap[0].When.IsZero() || ap[1].Who != "bob@host" || ap[1].Gate != "switch" {
		t.Errorf("Approvals() = %+v", ap)
	}
	must(t, b.Record(state.Event{Kind: "cycle", Detail: "one"}))
	must(t, b.Record(state.Event{Kind: "unlock", Detail: "two", Who: "carol@x"}))
	h, err := b.History()
	must(t, err)
	if len(h) != 2 || h[0].Seq != 1 || h[1].Seq != 2 || h[0].Who == "" || h[1].Who != "carol@x" || h[1].Detail != "two" {
		t.Errorf("History() = %+v", h)
	}
}

func testInitKeeps(t *testing.T, k Kit) {
	b, _ := k.New(t)
	_, err := b.Begin(threeSteps())
	must(t, err)
	must(t, b.SetFact("c1/x", "1"))
	must(t, b.Init(state.Meta{Phase: "start", Cycle: 2, From: 29, To: 31}))
	m, err := b.Meta()
	must(t, err)
	if m.Cycle != 2 || m.Phase != "start" || m.Schema != state.SchemaVersion {
		t.Errorf("Meta() = %+v", m)
	}
	all, _ := b.Attempts()
	h, _ := b.History()
	f, _ := b.Facts("")
	if len(all) != 1 || len(h) != 1 || len(f) != 1 {
		t.Errorf("Init dropped records: %d attempts, %d events, %d facts", len(all), len(h), len(f))
	}
}

// everyVerb calls each method once, for the refusal tests; it returns the
// errors by method.
func everyVerb(b state.Backend) map[string]error {
	_, meta := b.Meta()
	_, last := b.Last()
	_, hist := b.History()
	_, begin := b.Begin(threeSteps())
	return map[string]error{
		"Meta": meta, "Last": last, "History": hist, "Verify": b.Verify(), "Begin": begin,
		"Init":     b.Init(state.Meta{Phase: "start", Cycle: 9}),
		"SetFact":  b.SetFact("k", "v"),
		"Record":   b.Record(state.Event{Kind: "x"}),
		"SetPhase": b.SetPhase(0, "done"),
	}
}

func testNewerSchema(t *testing.T, k Kit) {
	b, _ := k.New(t)
	must(t, b.Init(state.Meta{Phase: "dev-upgraded", Cycle: 1}))
	k.SetSchema(t, b, state.SchemaVersion+1)
	for name, err := range everyVerb(b) {
		if !errors.Is(err, state.ErrNewerSchema) {
			t.Errorf("%s on a newer schema = %v, want ErrNewerSchema", name, err)
		}
	}
	k.SetSchema(t, b, state.SchemaVersion)
	m, err := b.Meta()
	must(t, err)
	h, _ := b.History()
	if m.Phase != "dev-upgraded" || m.Cycle != 1 || len(h) != 0 {
		t.Errorf("a refused write changed the state: %+v, %d events", m, len(h))
	}
}

func testCorrupt(t *testing.T, k Kit) {
	b, _ := k.New(t)
	must(t, b.Init(state.Meta{Phase: "dev-upgraded", Cycle: 1}))
	k.DamageMeta(t, b)
	for name, err := range everyVerb(b) {
		if !errors.Is(err, state.ErrCorrupt) {
			t.Errorf("%s on a damaged state = %v, want ErrCorrupt", name, err)
		}
	}
}

// One byte changed in any record, the stored boxes.yaml and commands
// included, is damage Verify reports (issue 23): every verb runs it
// before it reads or writes anything else. An intact state, and a record
// written before records were sealed, pass.
func testOneByte(t *testing.T, k Kit) {
	build := func(t *testing.T) state.Backend {
		b, _ := k.New(t)
		must(t, b.Init(state.Meta{Phase: "dev-upgraded", Cycle: 1, From: 27, To: 29}))
		a := threeSteps()
		a.Configs = []string{"boxes: {} # marker-cfg\n"}
		a.Steps[0].Commands = []string{"echo marker-cmd"}
		a.Steps[1].Text = "marker-text"
		_, err := b.Begin(a)
		must(t, err)
		must(t, b.Approve(state.Approval{Attempt: 1, Gate: "marker-gate", Who: "ann"}))
		must(t, b.Record(state.Event{Kind: "note", Detail: "marker-hist"}))
		must(t, b.Verify())
		return b
	}
	for _, c := range []struct{ member, record, old, new string }{
		{"the stored boxes.yaml", "attempt", "marker-cfg", "marker-cfh"},
		{"a stored command", "attempt", "marker-cmd", "marker-cmc"},
		{"a step's text", "attempt", "marker-text", "marker-tent"},
		{"an attempt's status", "attempt", `"status":"running"`, `"status":"runninf"`},
		{"a summary's event", "summary", "redirect", "redirecu"},
		{"a history event", "history", "attempt 1", "attempt 2"},
		{"an approval's gate", "approval", "marker-gate", "marker-gatf"},
		{"the meta record's cycle", "meta", `"cycle":1`, `"cycle":2`},
		{"a checksum digit", "history", `"crc":"`, `"crc":"` + "\x00"},
	} {
		t.Run(c.member, func(t *testing.T) {
			b := build(t)
			k.Edit(t, b, c.record, func(v []byte) []byte {
				if c.member == "a checksum digit" {
					i := len(v) - 3 // the last hex digit
					w := append([]byte(nil), v...)
					w[i] = "01"[w[i]%2]
					if w[i] == v[i] {
						w[i] = '2'
					}
					return w
				}
				if !strings.Contains(string(v), c.old) {
					t.Fatalf("%s holds no %q: %s", c.record, c.old, v)
				}
				return []byte(strings.Replace(string(v), c.old, c.new, 1))
			})
			if err := b.Verify(); !errors.Is(err, state.ErrCorrupt) {
				t.Errorf("Verify with one byte of %s changed = %v, want ErrCorrupt", c.member, err)
			}
		})
	}
	t.Run("a record written before checksums", func(t *testing.T) {
		b := build(t)
		k.Edit(t, b, "history", func(v []byte) []byte {
			i := strings.LastIndex(string(v), `,"crc":"`)
			return []byte(string(v[:i]) + "}")
		})
		if err := b.Verify(); err != nil {
			t.Errorf("Verify of a record without a checksum = %v, want nil", err)
		}
	})
}

func testLock(t *testing.T, k Kit) {
	b, other := k.New(t)
	me := state.CurrentHolder("boxswap next")
	l, err := b.Lock(me)
	must(t, err)
	if info := l.Info(); info.Holder.PID != os.Getpid() || info.Where == "" || info.Reclaimed != nil {
		t.Errorf("Info() = %+v", info)
	}
	o := other()
	_, err = o.Lock(state.CurrentHolder("boxswap resume"))
	var le *state.LockedError
	if !errors.As(err, &le) || !errors.Is(err, state.ErrLocked) || le.Holder.PID != os.Getpid() || le.Holder.Command != "boxswap next" {
		t.Fatalf("a second Lock = %v, want a LockedError naming the holder", err)
	}
	h, alive, err := o.ReadLock()
	must(t, err)
	if h == nil || !alive || h.Command != "boxswap next" || h.User != me.User || h.Host != me.Host {
		t.Errorf("ReadLock() = %+v, %v", h, alive)
	}
	if _, err := o.ForceUnlock(); !errors.Is(err, state.ErrLocked) {
		t.Errorf("ForceUnlock of a lock held by a live process on this host = %v, want ErrLocked", err)
	}
	// The holder writes; the state is the same for everyone.
	must(t, b.Record(state.Event{Kind: "held"}))
	must(t, l.Unlock())
	must(t, l.Unlock())
	if h, alive, err := o.ReadLock(); alive || err != nil {
		t.Errorf("after Unlock, ReadLock() = %+v, %v, %v; want free", h, alive, err)
	}
	l2, err := o.Lock(state.CurrentHolder("boxswap resume"))
	must(t, err)
	must(t, o.Record(state.Event{Kind: "held by the other"}))
	must(t, l2.Unlock())
	if h, err := o.ForceUnlock(); h != nil || err != nil {
		t.Errorf("ForceUnlock of a free lock = %v, %v; want nil, nil", h, err)
	}
	hist, err := b.History()
	must(t, err)
	if len(hist) != 2 {
		t.Errorf("history has %d events, want 2", len(hist))
	}
}

// Two handles writing at once lose nothing and share one sequence.
func testConcurrentWrites(t *testing.T, k Kit) {
	b, other := k.New(t)
	_, err := b.Begin(threeSteps())
	must(t, err)
	handles := []state.Backend{b, other()}
	const n = 15
	var wg sync.WaitGroup
	errs := make(chan error, 4*n)
	for i, h := range handles {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range n {
				errs <- h.Record(state.Event{Kind: "w", Detail: fmt.Sprintf("%d/%d", i, j)})
				errs <- h.UpdateStep(1, "redirect/sync/students", func(r *state.StepRecord) error { r.Attempts++; return nil })
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	h, err := b.History()
	must(t, err)
	seen := map[string]bool{}
	for i, e := range h {
		if e.Seq != uint64(i+1) {
			t.Fatalf("event %d has Seq %d", i, e.Seq)
		}
		seen[e.Detail] = true
	}
	a, err := b.Attempt(1)
	must(t, err)
	if len(seen) != 2*n+1 || a.Steps[0].Attempts != 2*n {
		t.Errorf("concurrent writes lost some: %d distinct events (want %d), %d step updates (want %d)",
			len(seen), 2*n+1, a.Steps[0].Attempts, 2*n)
	}
}

// A fencing backend refuses the writes of a holder whose lease ended, and
// those of a process without the lock while another holds it.
func testFencing(t *testing.T, k Kit) {
	b, other := k.New(t)
	_, err := b.Begin(threeSteps())
	must(t, err)
	l, err := b.Lock(state.CurrentHolder("boxswap next"))
	must(t, err)
	defer l.Unlock()
	must(t, b.UpdateStep(1, "redirect/sync/students", func(r *state.StepRecord) error { r.Status = state.StepRunning; return nil }))
	if f, ok := b.(state.Fencer); !ok {
		t.Errorf("%T fences its writes but is no state.Fencer", b)
	} else {
		must(t, f.Fence())
		defer func() {
			if err := f.Fence(); !errors.Is(err, state.ErrLockLost) {
				t.Errorf("Fence() after the lease ended = %v, want ErrLockLost", err)
			}
		}()
	}
	k.Expire(t, l)

	o := other()
	l2, err := o.Lock(state.CurrentHolder("boxswap resume"))
	must(t, err)
	defer l2.Unlock()
	if r := l2.Info().Reclaimed; r == nil || r.Command != "boxswap next" {
		t.Errorf("the new holder's Reclaimed = %+v, want the gone holder", r)
	}
	err = b.UpdateStep(1, "redirect/sync/students", func(r *state.StepRecord) error { r.Status = state.StepDone; return nil })
	if !errors.Is(err, state.ErrLockLost) {
		t.Fatalf("a write by the holder whose lease ended = %v, want ErrLockLost", err)
	}
	if err := b.Record(state.Event{Kind: "stale"}); !errors.Is(err, state.ErrLockLost) {
		t.Errorf("the next write = %v, want ErrLockLost again", err)
	}
	third := other()
	if err := third.Record(state.Event{Kind: "unlocked"}); !errors.Is(err, state.ErrLocked) {
		t.Errorf("a write without the lock while another holds it = %v, want ErrLocked", err)
	}
	a, err := o.Attempt(1)
	must(t, err)
	if a.Steps[0].Status != state.StepRunning {
		t.Errorf("the refused write changed the step to %s", a.Steps[0].Status)
	}
	h, _ := o.History()
	if len(h) != 1 {
		t.Errorf("history has %d events after refused writes, want 1", len(h))
	}
	must(t, o.UpdateStep(1, "redirect/sync/students", func(r *state.StepRecord) error { r.Status = state.StepDone; return nil }))
}

// A dump loaded into a new state reads back the same, and the next IDs
// follow the copied ones; a state holding records refuses a load.
func testDumpLoad(t *testing.T, k Kit) {
	src, _ := k.New(t)
	must(t, src.Init(state.Meta{Phase: "dev-upgraded", Cycle: 1, From: 12, To: 13}))
	for range 3 {
		_, err := src.Begin(threeSteps())
		must(t, err)
	}
	must(t, src.SetStepFact(2, "redirect/sync/students", "c1/", "size", "42"))
	must(t, src.SetPhase(3, "redirected"))
	must(t, src.Approve(state.Approval{Attempt: 3, Gate: "redirect"}))
	must(t, src.MarkDone(1, "redirect/sync/students", state.Mark{Who: "ann", Reason: "by hand", When: time.Now()}))
	d, err := state.ReadDump(src)
	must(t, err)
	dst, _ := k.New(t)
	ld, ok := dst.(state.Loader)
	if !ok {
		t.Fatalf("%T is no state.Loader: state push and pull cannot use it", dst)
	}
	must(t, ld.Load(d))
	got, err := state.ReadDump(dst)
	must(t, err)
	if same, part := state.SameDump(d, got); !same {
		t.Fatalf("the loaded state differs in its %s", part)
	}
	must(t, dst.Verify())
	id, err := dst.Begin(threeSteps())
	must(t, err)
	h, _ := dst.History()
	if id != 4 || h[len(h)-1].Seq != uint64(len(d.History)+1) {
		t.Errorf("after the load, Begin gave attempt %d and event %d; want 4 and %d", id, h[len(h)-1].Seq, len(d.History)+1)
	}
	if err := ld.Load(d); err == nil {
		t.Error("a second load into a state holding records: no error")
	}
}
