package state

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"boxswap/boxes"
)

func TestFreshStateCreatesNoFile(t *testing.T) {
	s := newStore(t)
	m, err := s.Meta()
	if err != nil {
		t.Fatal(err)
	}
	if want := (Meta{Schema: SchemaVersion, Phase: "start"}); m != want {
		t.Errorf("Meta() = %+v, want %+v", m, want)
	}
	if last, err := s.Last(); err != nil || last != nil {
		t.Errorf("Last() = %v, %v; want nil, nil", last, err)
	}
	if all, err := s.Attempts(); err != nil || len(all) != 0 {
		t.Errorf("Attempts() = %v, %v", all, err)
	}
	if h, err := s.History(); err != nil || len(h) != 0 {
		t.Errorf("History() = %v, %v", h, err)
	}
	if f, err := s.Facts(""); err != nil || len(f) != 0 {
		t.Errorf("Facts() = %v, %v", f, err)
	}
	if v, ok, err := s.Fact("python"); err != nil || ok || v != "" {
		t.Errorf("Fact() = %q, %v, %v", v, ok, err)
	}
	if a, err := s.Approvals(); err != nil || len(a) != 0 {
		t.Errorf("Approvals() = %v, %v", a, err)
	}
	if _, err := s.Attempt(1); !errors.Is(err, ErrNoAttempt) {
		t.Errorf("Attempt(1) = %v, want ErrNoAttempt", err)
	}
	if err := s.Check(); err != nil {
		t.Errorf("Check() = %v", err)
	}
	if err := s.DeleteFact("python"); err != nil {
		t.Errorf("DeleteFact() = %v", err)
	}
	if h, live, err := ReadLock(s.Path()); h != nil || live || err != nil {
		t.Errorf("ReadLock() = %v, %v, %v", h, live, err)
	}
	if _, err := os.Stat(s.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("reads created %s: %v", s.Path(), err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(s.Path())); len(entries) != 0 {
		t.Errorf("reads left files behind: %v", entries)
	}
}

// Issue 10, item 2: only a missing file is a fresh start. An empty file,
// /dev/null, a FIFO, a directory or a link (dangling, to an empty file, to
// a good state) is refused by reads and writes alike, and what it points to
// is never touched.
func TestNotAFileRefusedUntouched(t *testing.T) {
	good := filepath.Join(t.TempDir(), "good.db")
	if err := Open(good).Init(Meta{Phase: "dev-upgraded", Cycle: 1, From: 27, To: 29}); err != nil {
		t.Fatal(err)
	}
	goodBytes, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		make  func(t *testing.T, path string) (target string)
		wantF string // what the error names
	}{
		{"zero-byte file", func(t *testing.T, path string) string {
			return path // checked below to stay empty
		}, "the file is empty"},
		{"dev-null", func(t *testing.T, path string) string {
			if err := os.Symlink("/dev/null", path); err != nil {
				t.Fatal(err)
			}
			return ""
		}, "a symbolic link"},
		{"fifo", func(t *testing.T, path string) string {
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
			return ""
		}, "a FIFO"},
		{"directory", func(t *testing.T, path string) string {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
			return ""
		}, "a directory"},
		{"dangling link", func(t *testing.T, path string) string {
			target := filepath.Join(filepath.Dir(path), "elsewhere.db")
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
			return target // must not be created
		}, "a symbolic link"},
		{"link to an empty file", func(t *testing.T, path string) string {
			target := filepath.Join(filepath.Dir(path), "victim")
			if err := os.WriteFile(target, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
			return target
		}, "a symbolic link"},
		{"link to a good state", func(t *testing.T, path string) string {
			if err := os.Symlink(good, path); err != nil {
				t.Fatal(err)
			}
			return ""
		}, "a symbolic link"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "boxswap.db")
			if c.name == "zero-byte file" {
				if err := os.WriteFile(path, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			target := c.make(t, path)
			s := OpenWith(path, Options{Timeout: 200 * time.Millisecond})
			ops := map[string]func() error{
				"Meta":    func() error { _, err := s.Meta(); return err },
				"Last":    func() error { _, err := s.Last(); return err },
				"History": func() error { _, err := s.History(); return err },
				"Check":   s.Check,
				"SetFact": func() error { return s.SetFact("k", "v") },
				"Init":    func() error { return s.Init(Meta{Phase: StartPhase, Cycle: 1}) },
				"Begin":   func() error { _, err := s.Begin(&Attempt{Event: "upgrade-dev"}); return err },
			}
			for name, op := range ops {
				err := op()
				if !errors.Is(err, ErrNotAFile) {
					t.Errorf("%s: err = %v, want ErrNotAFile", name, err)
					continue
				}
				if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, "empty or not a file") || !strings.Contains(msg, c.wantF) {
					t.Errorf("%s: %q does not name %s as empty or not a file (%s)", name, msg, path, c.wantF)
				}
			}
			switch target {
			case "":
			case path:
				if fi, err := os.Stat(path); err != nil || fi.Size() != 0 {
					t.Errorf("the empty state file was written: %v, %v", fi, err)
				}
			default:
				fi, err := os.Stat(target)
				if c.name == "dangling link" {
					if !errors.Is(err, os.ErrNotExist) {
						t.Errorf("a database was created at the link's target %s: %v", target, err)
					}
				} else if err != nil || fi.Size() != 0 {
					t.Errorf("the link's target %s was written: %v, %v", target, fi, err)
				}
			}
			if data, _ := os.ReadFile(good); !bytes.Equal(data, goodBytes) {
				t.Errorf("the good state behind a link was changed")
			}
		})
	}
}

// Issue 10, item 2: --state /dev/null is a device, not a fresh start.
func TestDevNullRefused(t *testing.T) {
	s := Open(os.DevNull)
	if _, err := s.Meta(); !errors.Is(err, ErrNotAFile) || !strings.Contains(err.Error(), "a device") {
		t.Errorf("Meta() of /dev/null: %v, want ErrNotAFile naming a device", err)
	}
	if err := s.SetFact("k", "v"); !errors.Is(err, ErrNotAFile) {
		t.Errorf("SetFact() on /dev/null: %v, want ErrNotAFile", err)
	}
	// A read of a refused file says only that: not also what a fresh
	// state would have answered.
	if _, err := s.Attempt(1); !errors.Is(err, ErrNotAFile) || errors.Is(err, ErrNoAttempt) {
		t.Errorf("Attempt(1) of /dev/null: %v, want ErrNotAFile alone", err)
	}
	if _, err := Lock(os.DevNull, CurrentHolder("test")); err == nil {
		t.Errorf("Lock(/dev/null) took a lock on /dev/null.lock")
	}
}

// Issue 10, item 1: the files boxswap creates are 0600.
func TestStateFileIsPrivate(t *testing.T) {
	s := newStore(t)
	if err := s.SetFact("k", "v"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("state file mode %v, want 0600", perm)
	}
}

func TestBeginUpdateStepSetPhase(t *testing.T) {
	s := OpenWith(filepath.Join(t.TempDir(), "boxswap.db"), Options{Who: "alice@laptop"})
	t.Cleanup(func() { checkConsistent(t, s.Path()) })

	if err := s.Init(Meta{Phase: "start", Cycle: 1, From: 27, To: 29}); err != nil {
		t.Fatal(err)
	}
	a := &Attempt{Cycle: 1, Event: "upgrade-dev", From: "start", Command: "next", Steps: []StepRecord{
		{ID: "upgrade-dev/preflight", Box: "thermals", Text: "preflight", Commands: []string{"true"}},
		{ID: "upgrade-dev/reboot", Box: "thermals", Text: "reboot", Irreversible: true},
	}}
	id, err := s.Begin(a)
	if err != nil {
		t.Fatal(err)
	}
	if id != 1 || a.ID != 1 || a.Status != Running || a.Started.IsZero() || a.Steps[0].Status != Pending {
		t.Fatalf("Begin: id %d, attempt %+v", id, a)
	}
	exit := 0
	for _, stepID := range []string{"upgrade-dev/preflight", "upgrade-dev/reboot"} {
		err := s.UpdateStep(id, stepID, func(r *StepRecord) error {
			r.Status, r.Attempts, r.Started = StepRunning, r.Attempts+1, time.Now()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		err = s.UpdateStep(id, stepID, func(r *StepRecord) error {
			r.Status, r.Ended, r.Exit = StepDone, time.Now(), &exit
			r.Tail = tailLines("line 1\nline 2\n", 0)
			r.Facts = map[string]string{"boot-id": "abc"}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetPhase(id, "dev-upgraded"); err != nil {
		t.Fatal(err)
	}

	// A new Store on the same file sees everything.
	s2 := Open(s.Path())
	m, err := s2.Meta()
	if err != nil {
		t.Fatal(err)
	}
	if m.Phase != "dev-upgraded" || m.Cycle != 1 || m.From != 27 || m.To != 29 || m.Schema != SchemaVersion || m.Changed.IsZero() {
		t.Errorf("Meta() = %+v", m)
	}
	got, err := s2.Attempt(id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != Done || got.To != "dev-upgraded" || got.Ended.IsZero() || got.Event != "upgrade-dev" || len(got.Steps) != 2 {
		t.Errorf("Attempt() = %+v", got)
	}
	for _, r := range got.Steps {
		if r.Status != StepDone || r.Attempts != 1 || r.Exit == nil || *r.Exit != 0 ||
			!reflect.DeepEqual(r.Tail, []string{"line 1", "line 2"}) || r.Facts["boot-id"] != "abc" {
			t.Errorf("step %+v", r)
		}
	}
	if !got.Steps[1].Irreversible || got.Steps[0].Commands[0] != "true" || got.Steps[0].Box != "thermals" {
		t.Errorf("planned fields lost: %+v", got.Steps)
	}
	last, err := s2.Last()
	if err != nil || last == nil || last.ID != id {
		t.Errorf("Last() = %v, %v", last, err)
	}
	h, err := s2.History()
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 || h[0].Kind != "begin" || h[1].Kind != "done" || h[0].Seq != 1 || h[1].Seq != 2 ||
		h[1].Who != "alice@laptop" || !strings.Contains(h[1].Detail, "dev-upgraded") {
		t.Errorf("History() = %+v", h)
	}
}

func TestAttemptsOldestFirst(t *testing.T) {
	s := newStore(t)
	// More than 255 so that a little-endian or textual key would sort wrong.
	for i := range 300 {
		if _, err := s.Begin(&Attempt{Event: boxes.Event(fmt.Sprint("e", i))}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.Attempts()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 300 {
		t.Fatalf("%d attempts", len(all))
	}
	for i, a := range all {
		if a.ID != uint64(i+1) || a.Event != boxes.Event(fmt.Sprint("e", i)) {
			t.Fatalf("attempt %d is %d %s", i, a.ID, a.Event)
		}
	}
	if last, err := s.Last(); err != nil || last.ID != 300 {
		t.Errorf("Last() = %v, %v", last, err)
	}
}

func TestUpdateErrorsWriteNothing(t *testing.T) {
	s := newStore(t)
	id, err := s.Begin(&Attempt{Event: "redirect", Steps: []StepRecord{{ID: "a"}}})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err = s.UpdateAttempt(id, func(a *Attempt) error {
		a.Status = Failed
		return boom
	})
	if err != boom {
		t.Errorf("UpdateAttempt returned %v, want the callback's error", err)
	}
	if err := s.UpdateStep(id, "nope", func(*StepRecord) error { return nil }); !errors.Is(err, ErrNoStep) {
		t.Errorf("UpdateStep(unknown step) = %v", err)
	}
	if err := s.UpdateStep(99, "a", func(*StepRecord) error { return nil }); !errors.Is(err, ErrNoAttempt) {
		t.Errorf("UpdateStep(unknown attempt) = %v", err)
	}
	if err := s.SetPhase(99, "redirected"); !errors.Is(err, ErrNoAttempt) {
		t.Errorf("SetPhase(unknown attempt) = %v", err)
	}
	if m, _ := s.Meta(); m.Phase != StartPhase {
		t.Errorf("failed SetPhase moved the phase to %s", m.Phase)
	}
	a, err := s.Attempt(id)
	if err != nil || a.Status != Running {
		t.Errorf("after failed update: %+v, %v", a, err)
	}
	// The ID cannot be changed by the callback.
	if err := s.UpdateAttempt(id, func(a *Attempt) error { a.ID = 7; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Attempt(7); !errors.Is(err, ErrNoAttempt) {
		t.Errorf("UpdateAttempt stored the attempt under a new ID: %v", err)
	}
}

func TestSetPhaseWithoutAttempt(t *testing.T) {
	s := newStore(t)
	if err := s.SetPhase(0, "redirected"); err != nil {
		t.Fatal(err)
	}
	m, _ := s.Meta()
	h, _ := s.History()
	if m.Phase != "redirected" || len(h) != 1 || h[0].Kind != "phase" {
		t.Errorf("meta %+v history %+v", m, h)
	}
}

func TestInitKeepsHistoryAndAttempts(t *testing.T) {
	s := newStore(t)
	id, _ := s.Begin(&Attempt{Event: "epilogue"})
	if err := s.SetPhase(id, "done"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetFact("python", "3.6"); err != nil {
		t.Fatal(err)
	}
	if err := s.Init(Meta{Cycle: 2, From: 29, To: 31}); err != nil {
		t.Fatal(err)
	}
	m, _ := s.Meta()
	all, _ := s.Attempts()
	h, _ := s.History()
	py, ok, _ := s.Fact("python")
	if m.Phase != StartPhase || m.Cycle != 2 || len(all) != 1 || len(h) != 2 || !ok || py != "3.6" {
		t.Errorf("after Init: meta %+v, %d attempts, %d events, python %q", m, len(all), len(h), py)
	}
}

func TestFacts(t *testing.T) {
	s := newStore(t)
	set := map[string]string{
		"thermals/python": "3.6.8", "thermals/pip": "numpy==1.0\nscipy==1.1",
		"thermals/boot-id": "b1", "thurst/python": "3.6.5", "thermals": "not a prefix match for thermals/",
	}
	for k, v := range set {
		if err := s.SetFact(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetFact("thermals/boot-id", "b2"); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := s.Fact("thermals/boot-id"); v != "b2" || !ok || err != nil {
		t.Errorf("Fact = %q %v %v", v, ok, err)
	}
	if err := s.DeleteFact("thermals/pip"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteFact("never-set"); err != nil {
		t.Errorf("DeleteFact(missing) = %v", err)
	}
	got, err := s.Facts("thermals/")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"thermals/python": "3.6.8", "thermals/boot-id": "b2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Facts(thermals/) = %v, want %v", got, want)
	}
	if all, _ := s.Facts(""); len(all) != 4 {
		t.Errorf("Facts() = %v", all)
	}
	if err := s.SetFact("", "x"); err == nil {
		t.Error("SetFact with an empty key succeeded")
	}
}

func TestApprovalsAndRecord(t *testing.T) {
	s := OpenWith(filepath.Join(t.TempDir(), "boxswap.db"), Options{Who: "bob@desk"})
	t.Cleanup(func() { checkConsistent(t, s.Path()) })
	when := time.Date(2024, 5, 1, 10, 42, 7, 0, time.UTC)
	if err := s.Approve(Approval{Attempt: 3, Gate: "redirect/validated", Who: "alice@laptop", When: when}); err != nil {
		t.Fatal(err)
	}
	if err := s.Approve(Approval{Attempt: 4, Gate: "switch-back/validated"}); err != nil {
		t.Fatal(err)
	}
	ap, err := s.Approvals()
	if err != nil {
		t.Fatal(err)
	}
	if len(ap) != 2 || ap[0].Who != "alice@laptop" || !ap[0].When.Equal(when) || ap[1].Who != "bob@desk" || ap[1].When.IsZero() {
		t.Errorf("Approvals() = %+v", ap)
	}
	for i := range 3 {
		if err := s.Record(Event{Kind: "override", Detail: strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	h, _ := s.History()
	if len(h) != 3 {
		t.Fatalf("History() = %+v", h)
	}
	for i, e := range h {
		if e.Seq != uint64(i+1) || e.Detail != strconv.Itoa(i) || e.Who != "bob@desk" || e.Time.IsZero() {
			t.Errorf("event %d = %+v", i, e)
		}
	}
}

func TestTailLines(t *testing.T) {
	many := make([]string, 30)
	for i := range many {
		many[i] = fmt.Sprint("line ", i)
	}
	long := strings.Repeat("é", 400) // 800 bytes
	for _, tc := range []struct {
		name, in string
		n        int
		want     []string
	}{
		{"empty", "", 0, nil},
		{"only newlines", "\n\n", 0, nil},
		{"no final newline", "a\nb", 0, []string{"a", "b"}},
		{"final newline dropped", "a\nb\n", 0, []string{"a", "b"}},
		{"inner blank kept", "a\n\nb\n", 0, []string{"a", "", "b"}},
		{"last n", "a\nb\nc\n", 2, []string{"b", "c"}},
		{"default MaxTail", strings.Join(many, "\n"), 0, many[10:]},
		{"crlf", "a\r\nb\r\n", 0, []string{"a", "b"}},
		{"progress redraw", "Downloading 10%\rDownloading 50%\rDownloading 100%\ndone\n", 0, []string{"Downloading 100%", "done"}},
		{"long line cut on a rune", long, 0, []string{strings.Repeat("é", 256) + "…"}},
		{"invalid utf8", "a\xffb", 0, []string{"a\uFFFDb"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tailLines(tc.in, tc.n); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("tailLines(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
			}
		})
	}
}

func TestStoredTailIsCut(t *testing.T) {
	s := newStore(t)
	id, _ := s.Begin(&Attempt{Event: "upgrade-dev", Steps: []StepRecord{{ID: "dnf"}}})
	var lines []string
	for i := range 50 {
		lines = append(lines, fmt.Sprint("out ", i))
	}
	if err := s.UpdateStep(id, "dnf", func(r *StepRecord) error { r.Tail = lines; return nil }); err != nil {
		t.Fatal(err)
	}
	a, _ := s.Attempt(id)
	if got := a.Steps[0].Tail; !reflect.DeepEqual(got, lines[30:]) {
		t.Errorf("stored tail = %q", got)
	}
}

// Reads open the file read-only between a writer's short transactions; none
// of them must fail while the writer loops, and none may see the counter go
// back.
func TestReadsBetweenWrites(t *testing.T) {
	s := newStore(t)
	if err := s.Init(Meta{Cycle: 1}); err != nil {
		t.Fatal(err)
	}
	var (
		wg      sync.WaitGroup
		stop    = make(chan struct{})
		started = make(chan struct{})
		werr    error
		writes  int
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		w := Open(s.Path())
		for ; ; writes++ {
			if werr = w.SetFact("n", strconv.Itoa(writes)); werr != nil {
				return
			}
			if writes == 0 {
				close(started)
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	<-started
	prev := 0
	for i := range 100 {
		m, err := s.Meta()
		if err != nil || m.Cycle != 1 {
			t.Fatalf("read %d: %+v, %v", i, m, err)
		}
		v, ok, err := s.Fact("n")
		n, _ := strconv.Atoi(v)
		if err != nil || !ok || n < prev {
			t.Fatalf("read %d: %q, %v, %v (last %d)", i, v, ok, err, prev)
		}
		prev = n
	}
	close(stop)
	wg.Wait()
	if werr != nil {
		t.Fatalf("writer: %v", werr)
	}
	t.Logf("100 reads while the writer wrote %d times", writes)
}

// The same across processes, and the writer then dies mid-loop: the file
// must still be consistent and readable.
func TestReadsWhileAnotherProcessWritesThenDies(t *testing.T) {
	s := newStore(t)
	c := startChild(t, "writer", s.Path())
	var prev int
	for i := range 100 {
		v, ok, err := s.Fact("counter")
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		n, _ := strconv.Atoi(v)
		if !ok || n < prev {
			t.Fatalf("read %d: counter %q went back from %d", i, v, prev)
		}
		prev = n
		if _, err := s.History(); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
	}
	c.kill(t)
	if err := s.Check(); err != nil {
		t.Fatalf("after SIGKILL of the writer: %v", err)
	}
	v, _, err := s.Fact("counter")
	n, _ := strconv.Atoi(v)
	if err != nil || n < prev {
		t.Errorf("after SIGKILL: counter %q, %v (last read %d)", v, err, prev)
	}
	if err := s.SetFact("after", "yes"); err != nil {
		t.Errorf("writing after the writer died: %v", err)
	}
}

func TestBusyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "boxswap.db")
	if err := Open(path).SetFact("k", "v"); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o644, nil) // holds the exclusive flock
	if err != nil {
		t.Fatal(err)
	}
	s := OpenWith(path, Options{Timeout: 50 * time.Millisecond})
	if _, err := s.Meta(); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), path) {
		t.Errorf("Meta() while held = %v, want ErrBusy naming the file", err)
	}
	if err := s.SetFact("k", "w"); !errors.Is(err, ErrBusy) {
		t.Errorf("SetFact() while held = %v, want ErrBusy", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if v, _, err := s.Fact("k"); err != nil || v != "v" {
		t.Errorf("after release: %q, %v", v, err)
	}
}

// A process killed between steps leaves the attempt as it was written last:
// running, the first step done, the second running with one attempt.
func TestProcessKilledBetweenSteps(t *testing.T) {
	s := newStore(t)
	c := startChild(t, "steps", s.Path())
	c.kill(t)
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	a, err := s.Last()
	if err != nil {
		t.Fatal(err)
	}
	if a == nil || c.ready != strconv.FormatUint(a.ID, 10) {
		t.Fatalf("Last() = %+v, child said %q", a, c.ready)
	}
	if a.Status != Running || a.Event != "upgrade-dev" || len(a.Steps) != 3 {
		t.Fatalf("attempt %+v", a)
	}
	st := a.Steps
	if st[0].Status != StepDone || st[0].Attempts != 1 || st[0].Ended.IsZero() || !reflect.DeepEqual(st[0].Tail, []string{"checked", "all good"}) {
		t.Errorf("step 1 = %+v", st[0])
	}
	if st[1].Status != StepRunning || st[1].Attempts != 1 || st[1].Started.IsZero() || !st[1].Ended.IsZero() {
		t.Errorf("step 2 = %+v", st[1])
	}
	if st[2].Status != Pending || st[2].Attempts != 0 || !st[2].Irreversible {
		t.Errorf("step 3 = %+v", st[2])
	}
	if m, err := s.Meta(); err != nil || m.Phase != StartPhase {
		t.Errorf("phase moved: %+v, %v", m, err)
	}
	// And the store goes on: the resumed step completes.
	if err := s.UpdateStep(a.ID, st[1].ID, func(r *StepRecord) error { r.Status = StepDone; return nil }); err != nil {
		t.Fatal(err)
	}
}

// snapshot is a file's bytes and modification time, to prove it untouched.
type snapshot struct {
	data  []byte
	mtime time.Time
}

func takeSnapshot(t *testing.T, path string) snapshot {
	t.Helper()
	// An old mtime, so that any write would show even within the clock's
	// resolution.
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return snapshot{data, old}
}

func (sn snapshot) same(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if !bytes.Equal(data, sn.data) {
		t.Errorf("%s changed: %d bytes, was %d", path, len(data), len(sn.data))
	}
	if !fi.ModTime().Equal(sn.mtime) {
		t.Errorf("%s modified at %v", path, fi.ModTime())
	}
}

// everyOp calls each method of the store, reads and writes.
func everyOp(s *Store) map[string]error {
	errs := map[string]error{}
	_, errs["Meta"] = s.Meta()
	_, errs["Last"] = s.Last()
	_, errs["Attempts"] = s.Attempts()
	_, errs["Attempt"] = s.Attempt(1)
	_, errs["History"] = s.History()
	_, errs["Approvals"] = s.Approvals()
	_, _, errs["Fact"] = s.Fact("k")
	_, errs["Facts"] = s.Facts("")
	errs["Check"] = s.Check()
	errs["Verify"] = s.Verify()
	errs["Init"] = s.Init(Meta{Cycle: 1})
	_, errs["Begin"] = s.Begin(&Attempt{Event: "upgrade-dev"})
	errs["UpdateAttempt"] = s.UpdateAttempt(1, func(*Attempt) error { return nil })
	errs["UpdateStep"] = s.UpdateStep(1, "x", func(*StepRecord) error { return nil })
	errs["SetPhase"] = s.SetPhase(1, "done")
	errs["SetFact"] = s.SetFact("k", "v")
	errs["DeleteFact"] = s.DeleteFact("k")
	errs["Approve"] = s.Approve(Approval{Gate: "g"})
	errs["Record"] = s.Record(Event{Kind: "x"})
	return errs
}

// Issue 10, item 2: where, plan, resume and rollback passed a damaged
// page that log and next refused. Verify, which every verb runs first,
// finds damage in records those verbs never read.
func TestVerifyFindsDamageOtherReadsMiss(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func(t *testing.T, path string)
	}{
		{"undecodable history event", func(t *testing.T, path string) {
			setRaw(t, path, bucketHistory, itob(1), []byte("{not json"))
		}},
		{"garbled history page", func(t *testing.T, path string) {
			var root int64
			withBolt(t, path, func(tx *bolt.Tx) error {
				root = int64(tx.Bucket(bucketHistory).Root())
				return nil
			})
			if root == 0 {
				t.Fatal("the history bucket is inline; write more events")
			}
			garble(t, path, root*4096+16, 4000)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "boxswap.db")
			s := OpenWith(path, Options{Timeout: 200 * time.Millisecond})
			if err := s.Init(Meta{Phase: "dev-upgraded", Cycle: 1, From: 27, To: 29}); err != nil {
				t.Fatal(err)
			}
			for i := range 50 {
				if err := s.Record(Event{Kind: "x", Detail: strings.Repeat("history ", 20) + fmt.Sprint(i)}); err != nil {
					t.Fatal(err)
				}
			}
			tc.make(t, path)
			sn := takeSnapshot(t, path)
			if m, err := s.Meta(); err != nil || m.Phase != "dev-upgraded" {
				t.Fatalf("the damage is not where Meta reads: %+v, %v", m, err)
			}
			if err := s.Verify(); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
				t.Errorf("Verify() = %v, want ErrCorrupt naming %s", err, path)
			}
			sn.same(t, path)
		})
	}
}

func TestNewerSchemaRefusedUntouched(t *testing.T) {
	path := filepath.Join(t.TempDir(), "boxswap.db")
	s := Open(path)
	if err := s.SetFact("k", "v"); err != nil {
		t.Fatal(err)
	}
	setRaw(t, path, bucketMeta, keySchema, []byte("2"))
	sn := takeSnapshot(t, path)
	for op, err := range everyOp(s) {
		if !errors.Is(err, ErrNewerSchema) {
			t.Errorf("%s: %v, want ErrNewerSchema", op, err)
			continue
		}
		want := fmt.Sprintf("state %s was written by a newer boxswap (schema 2 > 1); use that version", path)
		if err.Error() != want {
			t.Errorf("%s: %q, want %q", op, err, want)
		}
	}
	sn.same(t, path)
}

func TestCorruptRefusedUntouched(t *testing.T) {
	garbage := make([]byte, 64<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	for _, tc := range []struct {
		name string
		make func(t *testing.T, path string)
	}{
		{"garbage", func(t *testing.T, path string) { writeFile(t, path, garbage) }},
		{"short text", func(t *testing.T, path string) { writeFile(t, path, []byte("phase: start\n")) }},
		{"truncated", func(t *testing.T, path string) {
			s := Open(path)
			for i := range 100 {
				if err := s.SetFact(fmt.Sprint("pip-", i), strings.Repeat("numpy==1.0\n", 200)); err != nil {
					t.Fatal(err)
				}
			}
			var need int64
			withBolt(t, path, func(tx *bolt.Tx) error { need = tx.Size(); return nil })
			if err := os.Truncate(path, need/2); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated to one page", func(t *testing.T, path string) {
			if err := Open(path).SetFact("k", "v"); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, 5000); err != nil {
				t.Fatal(err)
			}
		}},
		{"garbled pages", func(t *testing.T, path string) {
			fillStore(t, path)
			garble(t, path, 2*4096, -1)
		}},
		{"garbled freelist", func(t *testing.T, path string) {
			fillStore(t, path)
			var free int64 = -1
			db, err := bolt.Open(path, 0o644, &bolt.Options{ReadOnly: true, PreLoadFreelist: true})
			if err != nil {
				t.Fatal(err)
			}
			_ = db.View(func(tx *bolt.Tx) error {
				for id := 2; id < int(tx.Size()/4096); id++ {
					if pi, err := tx.Page(id); err == nil && pi != nil && pi.Type == "freelist" {
						free = int64(id)
					}
				}
				return nil
			})
			_ = db.Close()
			if free < 0 {
				t.Fatal("no freelist page")
			}
			garble(t, path, free*4096, 4096)
		}},
		{"another program's bbolt file", func(t *testing.T, path string) {
			db, err := bolt.Open(path, 0o644, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = db.Update(func(tx *bolt.Tx) error {
				b, err := tx.CreateBucket([]byte("widgets"))
				if err != nil {
					return err
				}
				return b.Put([]byte("a"), []byte("b"))
			})
			if err != nil {
				t.Fatal(err)
			}
			_ = db.Close()
		}},
		{"bad schema version", func(t *testing.T, path string) {
			if err := Open(path).SetFact("k", "v"); err != nil {
				t.Fatal(err)
			}
			setRaw(t, path, bucketMeta, keySchema, []byte("one"))
		}},
		{"undecodable meta", func(t *testing.T, path string) {
			if err := Open(path).Init(Meta{Cycle: 1}); err != nil {
				t.Fatal(err)
			}
			setRaw(t, path, bucketMeta, keyMeta, []byte("{not json"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "boxswap.db")
			tc.make(t, path)
			sn := takeSnapshot(t, path)
			// A short timeout, so that a flock left behind by a refused
			// open shows as ErrBusy quickly.
			s := OpenWith(path, Options{Timeout: 200 * time.Millisecond})
			if err := s.SetFact("k", "v"); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("SetFact() = %v, want ErrCorrupt", err)
			} else if msg := err.Error(); !strings.Contains(msg, path) || !hintSays(err, "keep a copy") {
				t.Errorf("message %q does not name the file, or its hint does not say to keep a copy", msg)
			}
			// Every write is refused; reads that do not decode the damaged
			// records may succeed, but none may write. Verify, which every
			// verb runs first, finds the damage wherever it is (issue 10).
			ops := everyOp(s)
			if !errors.Is(ops["Verify"], ErrCorrupt) {
				t.Errorf("Verify() = %v, want ErrCorrupt", ops["Verify"])
			}
			for op, err := range ops {
				if err == nil && isWrite(op) {
					t.Errorf("%s succeeded on a corrupt file", op)
				}
				if err != nil && !errors.Is(err, ErrCorrupt) && !(op == "Attempt" && errors.Is(err, ErrNoAttempt)) {
					t.Errorf("%s: %v, want ErrCorrupt", op, err)
				}
			}
			sn.same(t, path)
		})
	}
}

// fillStore writes enough to span many pages.
func fillStore(t *testing.T, path string) {
	t.Helper()
	s := Open(path)
	if err := s.Init(Meta{Cycle: 1}); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if err := s.SetFact(fmt.Sprint("pip-", i), strings.Repeat("numpy==1.0\n", 20)); err != nil {
			t.Fatal(err)
		}
	}
}

// garble overwrites n bytes at off (to the end when n < 0) with noise.
func garble(t *testing.T, path string, off, n int64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	end := int64(len(data))
	if n >= 0 {
		end = off + n
	}
	rng := rand.New(rand.NewPCG(uint64(off), 7))
	for i := off; i < end; i++ {
		data[i] = byte(rng.Uint32())
	}
	writeFile(t, path, data)
}

func isWrite(op string) bool {
	switch op {
	case "Init", "Begin", "UpdateAttempt", "UpdateStep", "SetPhase", "SetFact", "DeleteFact", "Approve", "Record":
		return true
	}
	return false
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// setRaw writes one key behind the store's back.
func setRaw(t *testing.T, path string, bucket, key, value []byte) {
	t.Helper()
	db, err := bolt.Open(path, 0o644, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put(key, value) }); err != nil {
		t.Fatal(err)
	}
}

func withBolt(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o644, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.View(fn); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkSetFact(b *testing.B) {
	s := Open(filepath.Join(b.TempDir(), "boxswap.db"))
	for i := 0; b.Loop(); i++ {
		if err := s.SetFact("k", strconv.Itoa(i)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUpdateStep(b *testing.B) {
	s := Open(filepath.Join(b.TempDir(), "boxswap.db"))
	steps := make([]StepRecord, 20)
	for i := range steps {
		steps[i] = StepRecord{ID: fmt.Sprint("redirect/step-", i), Text: "a step", Commands: []string{"rsync -a --delete x y"}}
	}
	id, err := s.Begin(&Attempt{Event: "redirect", Steps: steps})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := s.UpdateStep(id, "redirect/step-7", func(r *StepRecord) error { r.Attempts++; return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMeta(b *testing.B) {
	s := Open(filepath.Join(b.TempDir(), "boxswap.db"))
	if err := s.Init(Meta{Cycle: 1}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.Meta(); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSummariesFollowTheAttempts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "boxswap.db")
	s := Open(path)
	var ids []uint64
	for c := 1; c <= 3; c++ {
		id, err := s.Begin(&Attempt{Cycle: c, Event: "upgrade-dev", Status: Running, Steps: []StepRecord{{ID: "a", Status: Pending}, {ID: "b", Status: Pending}}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := s.UpdateStep(ids[2], "a", func(r *StepRecord) error { r.Status = StepDone; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateAttempt(ids[2], func(a *Attempt) error { a.Status, a.FailedStep = Failed, "b"; return nil }); err != nil {
		t.Fatal(err)
	}
	sums, err := s.Summaries()
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != 3 || sums[2].Status != Failed || sums[2].Done != 1 || sums[2].Steps != 2 || sums[2].FailedStep != "b" || sums[0].Cycle != 1 {
		t.Fatalf("summaries %+v", sums)
	}
	from, err := s.AttemptsFrom(ids[1])
	if err != nil || len(from) != 2 || from[0].ID != ids[1] {
		t.Fatalf("attempts from %d: %v %+v", ids[1], err, from)
	}
	// A file whose attempts were written before summaries existed is
	// summarized from the full records.
	func() {
		db, err := bolt.Open(path, 0o644, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketSummaries) }); err != nil {
			t.Fatal(err)
		}
	}()
	again, err := Open(path).Summaries()
	if err != nil || len(again) != 3 || again[2] != sums[2] {
		t.Fatalf("fallback summaries: %v %+v, want %+v", err, again, sums)
	}
}

// mark-done: the step becomes done with who and why, the history says so,
// in one transaction; a done step or an unknown one is refused.
func TestMarkDone(t *testing.T) {
	s := OpenWith(filepath.Join(t.TempDir(), "boxswap.db"), Options{Who: "alice@laptop"})
	t.Cleanup(func() { checkConsistent(t, s.Path()) })
	if err := s.Init(Meta{Phase: "start", Cycle: 1, From: 12, To: 13}); err != nil {
		t.Fatal(err)
	}
	id, err := s.Begin(&Attempt{Cycle: 1, Event: "upgrade-dev", From: "start", Command: "next", Steps: []StepRecord{
		{ID: "upgrade-dev/pip-reinstall", Box: "thermals", Text: "pip", Status: StepFailed},
	}})
	if err != nil {
		t.Fatal(err)
	}
	when := time.Now()
	if err := s.MarkDone(id, "upgrade-dev/pip-reinstall", Mark{Who: "alice@laptop", Reason: "dropped nbh_local", When: when}); err != nil {
		t.Fatal(err)
	}
	a, err := s.Attempt(id)
	if err != nil {
		t.Fatal(err)
	}
	r := a.Steps[0]
	if r.Status != StepDone || r.Marked == nil || r.Marked.Reason != "dropped nbh_local" || r.Marked.Who != "alice@laptop" || r.Marked.Was != StepFailed {
		t.Fatalf("record %+v %+v", r, r.Marked)
	}
	h, err := s.History()
	if err != nil {
		t.Fatal(err)
	}
	if last := h[len(h)-1]; last.Kind != "mark-done" || !strings.Contains(last.Detail, "upgrade-dev/pip-reinstall marked done by hand (was failed): dropped nbh_local") {
		t.Errorf("history %+v", last)
	}
	if err := s.MarkDone(id, "upgrade-dev/pip-reinstall", Mark{Reason: "again"}); err == nil {
		t.Error("a done step marked again")
	}
	if err := s.MarkDone(id, "nope", Mark{Reason: "x"}); !errors.Is(err, ErrNoStep) {
		t.Errorf("unknown step: %v", err)
	}
}

// tailLines returns the last n lines of output (n <= 0 means MaxTail), as a
// terminal would show them: of a line redrawn with carriage returns only the
// last drawing is kept, and each line is cut to a few hundred bytes.
func tailLines(output string, n int) []string {
	if n <= 0 {
		n = MaxTail
	}
	output = strings.TrimRight(output, "\r\n")
	if output == "" {
		return nil
	}
	lines := strings.Split(output, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	tail := make([]string, len(lines))
	for i, l := range lines {
		tail[i] = clipLine(l)
	}
	return tail
}

// hintSays reports whether err's hint (the Hint method the CLI prints on
// its hint line) says want.
func hintSays(err error, want string) bool {
	var h interface{ Hint() string }
	return errors.As(err, &h) && strings.Contains(h.Hint(), want)
}
