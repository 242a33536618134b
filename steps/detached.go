package steps

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Commands that outlive the link. A package transaction, install.sh or a
// pip reinstall run in an SSH channel die with it: about 45 s without
// network closes the channel and breaks an RPM transaction halfway. These
// run detached instead, as a transient systemd unit (systemd-run --unit
// boxswap-STEP) whose output stays on the box, under RunDir/UNIT:
//
//	token    which start this is (also kept in the fact BOX/run/UNIT)
//	cmd      the command line
//	started  "PID BOOT-ID" of the wrapper, written first thing
//	out      stdout and stderr
//	rc       the exit status, written when the command ends
//
// The step follows the output; when the link drops, resume re-attaches to
// the running command (its PID alive in the same boot) or reads the result
// of the finished one, and never starts a second copy: systemd refuses a
// second unit of the same name, and a run found alive is only followed. A
// run that started but left no rc (the box crashed, the process was
// killed) was interrupted. A box without systemd (no /run/systemd/system)
// runs the same wrapper under setsid.

// RunDir holds, per detached command, its token, output and exit status.
const RunDir = "/var/lib/boxswap/run"

// runDir is RunDir; tests point it elsewhere.
var runDir = RunDir

// UnitName is the transient unit of step id: boxswap-ID with every
// character systemd does not allow in a unit name turned into "-".
func UnitName(id string) string {
	var b strings.Builder
	b.WriteString("boxswap-")
	for _, r := range id {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

// detached is one long remote command run detached from the SSH channel.
type detached struct {
	box   string
	unit  string // UnitName(step id)
	label string // for messages: "apt-get full-upgrade"
	cmd   string // the shell command line
}

func (d detached) dir() string { return runDir + "/" + d.unit }

// shown is how plan shows d's run: what Apply starts (startCmd wraps d.cmd
// in a file so that systemd-run expands nothing), in one line.
func (d detached) shown() string   { return "systemd-run --unit=" + d.unit + " -- " + d.cmd }
func (d detached) factKey() string { return d.box + "/run/" + d.unit }

// startCmd starts d with token: it clears d's folder, records the token
// and the command, starts the wrapper (systemd-run, or setsid without
// systemd) and waits until the wrapper has written its PID, so that a
// link lost right after finds it.
func (d detached) startCmd(token string) string {
	dir := quote(d.dir())
	// The wrapper is a file: systemd would expand $ and % in a command
	// line given to systemd-run.
	wrapper := "cd \"$HOME\" 2>/dev/null || cd /; d=" + dir +
		"; echo \"$$ $(cat /proc/sys/kernel/random/boot_id)\" > \"$d/started\"; " +
		"( " + d.cmd + "\n) > \"$d/out\" 2>&1 < /dev/null; echo $? > \"$d/rc.tmp\"; mv -f \"$d/rc.tmp\" \"$d/rc\""
	return "set -e; d=" + dir + "; rm -rf -- \"$d\"; mkdir -p -- \"$d\"; " +
		"printf '%s\\n' " + quote(token) + " > \"$d/token\"; printf '%s\\n' " + quote(d.cmd) + " > \"$d/cmd\"; " +
		"printf '%s\\n' " + quote(wrapper) + " > \"$d/run.sh\"; " +
		"if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null; then " +
		"systemctl reset-failed " + quote(d.unit+".service") + " 2>/dev/null || true; " +
		"systemd-run --quiet --unit=" + quote(d.unit) + " --description=" + quote("boxswap: "+strings.NewReplacer("%", "%%", "$", "$$").Replace(d.label)) +
		" --setenv=HOME=\"$HOME\" /bin/sh " + dir + "/run.sh; " +
		"else HOME=\"$HOME\" setsid /bin/sh \"$d/run.sh\" </dev/null >/dev/null 2>&1 & fi; " +
		"i=0; while [ ! -s \"$d/started\" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; " +
		"[ -s \"$d/started\" ] || { echo \"the command did not start\" >&2; exit 1; }"
}

// aliveTest exits 0 while the wrapper whose "PID BOOT" is in $pid and
// $boot runs: same boot, the process there and not a zombie, no rc yet.
const aliveTest = "[ ! -e \"$d/rc\" ] && [ -n \"$pid\" ] && [ \"$boot\" = \"$(cat /proc/sys/kernel/random/boot_id)\" ] && " +
	"kill -0 \"$pid\" 2>/dev/null && [ \"$(sed 's/.*) //' /proc/\"$pid\"/stat 2>/dev/null | cut -c1)\" != Z ]"

// queryCmd prints token=, started=, alive= and rc= lines about d's last
// start; it changes nothing.
func (d detached) queryCmd() string {
	return "d=" + quote(d.dir()) + "; tok=$(cat \"$d/token\" 2>/dev/null); pid=; boot=; " +
		"[ -r \"$d/started\" ] && read -r pid boot < \"$d/started\"; alive=no; " +
		"if " + aliveTest + "; then alive=yes; fi; " +
		"printf 'token=%s\\nstarted=%s\\nalive=%s\\nrc=%s\\n' \"$tok\" \"$pid\" \"$alive\" \"$(cat \"$d/rc\" 2>/dev/null)\""
}

// followCmd prints d's output from the start, following it until the
// wrapper ends (checked before each read, so the last read has it all).
func (d detached) followCmd() string {
	return "d=" + quote(d.dir()) + "; pid=; boot=; [ -r \"$d/started\" ] && read -r pid boot < \"$d/started\"; off=0; " +
		"while :; do end=yes; if " + aliveTest + "; then end=no; fi; " +
		"n=$(stat -c %s \"$d/out\" 2>/dev/null || echo 0); " +
		"if [ \"$n\" -gt \"$off\" ]; then tail -c +$((off+1)) \"$d/out\" | head -c $((n-off)); off=$n; fi; " +
		"[ $end = yes ] && break; sleep 0.5; done"
}

// runState is what queryCmd saw.
type runState struct {
	token   string
	started bool
	alive   bool
	rc      int // -1 when no rc
}

func parseRunState(out string) (runState, error) {
	st := runState{rc: -1}
	seen := 0
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		seen++
		switch k {
		case "token":
			st.token = v
		case "started":
			st.started = v != ""
		case "alive":
			st.alive = v == "yes"
		case "rc":
			if v != "" {
				n, err := strconv.Atoi(v)
				if err != nil {
					return st, fmt.Errorf("unexpected exit status %q", clip(v))
				}
				st.rc = n
			}
		default:
			seen--
		}
	}
	if seen != 4 {
		return st, fmt.Errorf("unexpected answer %q", clip(out))
	}
	return st, nil
}

// runEnd is how a detached run ended.
type runEnd struct {
	Exit int // -1 when interrupted
	// Interrupted: the run started but left no exit status (the box
	// crashed or rebooted, the wrapper was killed).
	Interrupted bool
	// Earlier: the run had ended before this Apply found it (a resume
	// after a lost link); Fresh runs are the ones this Apply started.
	Earlier bool
	Stdout  string
	Tail    []string
}

// ok says the run exited 0.
func (e runEnd) ok() bool { return !e.Interrupted && e.Exit == 0 }

// err is an *ExitError for a run that did not exit 0.
func (e runEnd) err(d detached) error {
	if e.ok() {
		return nil
	}
	if e.Interrupted {
		return fmt.Errorf("%s: %s was interrupted (the box crashed or the process was killed): no exit status in %s/rc",
			d.box, d.label, d.dir())
	}
	return &ExitError{Box: d.box, Command: d.label, Cmd: d.cmd, Code: e.Exit, Tail: e.Tail}
}

// ours returns the state of d's last start when it is the one this cycle
// recorded (fact BOX/run/UNIT), else ok false.
func (d detached) ours(ctx context.Context, env *Env) (runState, bool, error) {
	f, err := facts(env)
	if err != nil {
		return runState{}, false, err
	}
	tok, have := f.Get(d.factKey())
	st, err := d.query(ctx, env)
	if err != nil {
		return st, false, err
	}
	return st, have && st.token == tok && tok != "", nil
}

func (d detached) query(ctx context.Context, env *Env) (runState, error) {
	res, err := run(ctx, env, d.box, "checking on the detached "+d.label, d.queryCmd(), true)
	if err != nil {
		return runState{}, err
	}
	st, err := parseRunState(res.Stdout)
	if err != nil {
		return st, fmt.Errorf("%s: reading the state of %s: %w", d.box, d.unit, err)
	}
	return st, nil
}

// finishedOK says d's recorded run ended with exit 0: what Check of a
// detached step sees once its Apply succeeded.
func (d detached) finishedOK(ctx context.Context, env *Env) (bool, error) {
	st, ours, err := d.ours(ctx, env)
	if err != nil {
		return false, err
	}
	return ours && !st.alive && st.rc == 0, nil
}

// attach follows d's recorded run when it runs, or reads its result when it
// ended; with no recorded run (or one this cycle did not start) it starts
// one. It never starts a second copy: a run alive under d's name that this
// cycle did not start is refused.
func (d detached) attach(ctx context.Context, env *Env) (runEnd, error) {
	st, ours, err := d.ours(ctx, env)
	if err != nil {
		return runEnd{}, err
	}
	switch {
	case ours && st.alive:
		progress(env, "%s: re-attaching to %s (%s), still running", d.box, d.label, d.unit)
		return d.follow(ctx, env, false)
	case ours && st.rc >= 0:
		progress(env, "%s: %s (%s) ended while boxswap was away: exit %d", d.box, d.label, d.unit, st.rc)
		return d.follow(ctx, env, true)
	case ours && st.started:
		return runEnd{Exit: -1, Interrupted: true, Earlier: true}, nil
	case st.alive:
		return runEnd{}, advised(fmt.Sprintf("%s: %s is already running there (%s), started by another boxswap run or cycle: %v", d.box, d.unit, d.label, ErrPrecondition),
			fmt.Sprintf("wait for it to end (journalctl -u %s, %s/out), then run boxswap resume", d.unit, d.dir()), ErrPrecondition)
	}
	return d.start(ctx, env)
}

// start starts a new run of d (the previous one, if any, has ended) and
// follows it.
func (d detached) start(ctx context.Context, env *Env) (runEnd, error) {
	f, err := facts(env)
	if err != nil {
		return runEnd{}, err
	}
	st, err := d.query(ctx, env)
	if err != nil {
		return runEnd{}, err
	}
	if st.alive {
		return runEnd{}, advised(fmt.Sprintf("%s: %s (%s) still runs: %v; boxswap never starts a second copy", d.box, d.label, d.unit, ErrPrecondition),
			"wait for it to end, then run boxswap resume", ErrPrecondition)
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return runEnd{}, err
	}
	token := time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
	// Recorded before the start: a resume then knows the run is this one.
	if err := f.Set(d.factKey(), token); err != nil {
		return runEnd{}, fmt.Errorf("%s: recording the run of %s: %w", d.box, d.unit, err)
	}
	if _, err := run(ctx, env, d.box, "starting "+d.label+" as "+d.unit, d.startCmd(token), false); err != nil {
		return runEnd{}, err
	}
	progress(env, "%s: %s runs as %s (output in %s/out)", d.box, d.label, d.unit, d.dir())
	return d.follow(ctx, env, false)
}

// follow streams d's output until its wrapper ends, then reads its result.
func (d detached) follow(ctx context.Context, env *Env, earlier bool) (runEnd, error) {
	for {
		res, err := exec1(ctx, env, d.box, "following the detached "+d.label, d.followCmd(), false, true)
		if err != nil {
			return runEnd{}, err
		}
		st, err := d.query(ctx, env)
		if err != nil {
			return runEnd{}, err
		}
		switch {
		case st.alive:
			// tail ended early; follow again
			select {
			case <-ctx.Done():
				return runEnd{}, fmt.Errorf("%s: following %s: %w", d.box, d.unit, ctx.Err())
			case <-time.After(time.Second):
			}
		case st.rc >= 0:
			return runEnd{Exit: st.rc, Earlier: earlier, Stdout: res.Stdout, Tail: res.Tail}, nil
		default:
			return runEnd{Exit: -1, Interrupted: true, Earlier: earlier, Stdout: res.Stdout, Tail: res.Tail}, nil
		}
	}
}

// forget drops d's recorded run, so that a later Apply (after an undo)
// starts afresh.
func (d detached) forget(env *Env) error {
	f, err := facts(env)
	if err != nil {
		return err
	}
	return f.Delete(d.factKey())
}
