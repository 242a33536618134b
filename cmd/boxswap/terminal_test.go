package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"boxswap/boxes"
	"boxswap/boxes/sshtest"
	"boxswap/state"
)

// failingRedirect is a pair at dev-upgraded where next --yes approves the
// gate, reaches both boxes, then stops at thermals' release check (the
// boxes are this machine, which is not on f29): steps done, one failed.
func failingRedirect(t *testing.T) (p *pair, cfg string) {
	t.Helper()
	p = newPair(t, sshtest.Handler(readOnly))
	cfg = p.config(t, "/nbhosting", "/x/sitesettings.py")
	if err := state.Open(filepath.Join(p.dir, "boxswap.db")).Init(state.Meta{Phase: "dev-upgraded", Cycle: 1, From: 27, To: 29}); err != nil {
		t.Fatal(err)
	}
	return p, cfg
}

// selfCommand is a shell command line running this test binary as boxswap.
func selfCommand(t *testing.T, env []string, args ...string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	words := append([]string{"env", "BOXSWAP_TEST_MAIN=1", "SSH_AUTH_SOCK=", "TERM=xterm-256color"}, env...)
	words = append(words, self)
	words = append(words, args...)
	return boxes.QuoteAll(words)
}

// On a terminal (a tmux pane), next shows each finished step with a mark,
// its box and its time; the live line of the running step is gone once it
// ends; the summary follows. What is checked is the screen tmux renders,
// not the bytes.
func TestNextOnATerminal(t *testing.T) {
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Fatalf("the terminal test runs boxswap in a tmux pane: %v", err)
	}
	p, cfg := failingRedirect(t)
	sock := filepath.Join(p.dir, "tmux.sock")
	script := filepath.Join(p.dir, "run.sh")
	p.write(t, script, "#!/bin/sh\n"+selfCommand(t, nil, "-c", cfg, "--yes", "next")+"\necho EXIT=$?\nexec sleep 600\n")
	if err := os.Chmod(script, 0o755); err != nil {
		t.Fatal(err)
	}
	tm := func(args ...string) (string, error) {
		out, err := exec.Command(tmux, append([]string{"-S", sock, "-f", "/dev/null"}, args...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := tm("new-session", "-d", "-x", "150", "-y", "60", script); err != nil {
		t.Fatalf("tmux: %v\n%s", err, out)
	}
	t.Cleanup(func() { tm("kill-server") })
	var screen string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		screen, err = tm("capture-pane", "-p", "-J")
		if err != nil {
			t.Fatalf("tmux capture-pane: %v\n%s", err, screen)
		}
		if strings.Contains(screen, "EXIT=") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("boxswap did not end in the pane:\n%s", screen)
		}
	}
	for _, want := range []string{
		"redirect: ",
		"✓ [1/",
		"] operator ask the operator: ",
		"= [2/",
		"] thurst check that thurst answers over ssh  ",
		"✗ [",
		"  failed: ",
		"redirect (attempt 1): failed",
		"phase is still dev-upgraded",
		"EXIT=5",
	} {
		if !strings.Contains(screen, want) {
			t.Errorf("the screen lacks %q:\n%s", want, screen)
		}
	}
	if strings.Contains(screen, "▶") {
		t.Errorf("a live line was left on the screen:\n%s", screen)
	}
}

// Under a pty the bytes hold colors and line redraws; with NO_COLOR or
// --plain they are the plain lines, without any escape code.
func TestNextPlainUnderAPty(t *testing.T) {
	scriptBin, err := exec.LookPath("script")
	if err != nil {
		t.Fatalf("the pty tests use script(1) from util-linux: %v", err)
	}
	for _, tc := range []struct {
		name  string
		env   []string
		flags []string
		color bool
	}{
		{"terminal", nil, nil, true},
		{"no-color", []string{"NO_COLOR=1"}, nil, false},
		{"plain-flag", nil, []string{"--plain"}, false},
		{"term-dumb", []string{"TERM=dumb"}, nil, false}, // issue 10, item 8
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, cfg := failingRedirect(t)
			args := append([]string{"-c", cfg, "--yes"}, tc.flags...)
			cmd := exec.Command(scriptBin, "-q", "-e", "-c", selfCommand(t, tc.env, append(args, "next")...), "/dev/null")
			cmd.Stdin = strings.NewReader("")
			out, err := cmd.Output()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitRefused {
				t.Fatalf("next under script: %v, want exit %d\n%q", err, exitRefused, out)
			}
			s := string(out)
			if got := strings.Contains(s, "\x1b["); got != tc.color {
				t.Errorf("escape codes: %v, want %v:\n%q", got, tc.color, s)
			}
			if !tc.color {
				if !regexpFind(`(?m)^\d\d:\d\d:\d\d \[2/\d+\] thurst check that thurst answers`, strings.ReplaceAll(s, "\r\n", "\n")) {
					t.Errorf("no plain step line:\n%s", s)
				}
			}
		})
	}
}

// Webhooks of boxes.yaml hear the transition's start, its gate and its
// failure, as JSON; one that fails only adds a warning.
func TestNextNotifiesWebhooks(t *testing.T) {
	p, cfg := failingRedirect(t)
	var mu sync.Mutex
	var kinds []string
	var gate map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n map[string]any
		if err := json.NewDecoder(r.Body).Decode(&n); err != nil {
			t.Errorf("notice: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		kinds = append(kinds, fmt.Sprint(n["kind"]))
		if n["kind"] == "gate" {
			gate = n
		}
	}))
	defer srv.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	body, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("BOXSWAP_TEST_GONE_HOOK", down.URL+"/gone?token=secret")
	p.write(t, cfg, string(body)+fmt.Sprintf("notify:\n  - url: %s/hook\n  - url_env: BOXSWAP_TEST_GONE_HOOK\n    events: [failure]\n", srv.URL))
	if _, err := boxes.Load(cfg); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "-c", cfg, "--yes", "next")
	if code != exitRefused {
		t.Fatalf("next: exit %d\n%s\n%s", code, stdout, stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(kinds, " "); got != "start gate failure" {
		t.Errorf("notices %q, want start gate failure", got)
	}
	if gate["event"] != "redirect" || gate["step"] != "redirect/approve" || gate["prompt"] == "" {
		t.Errorf("gate notice %v", gate)
	}
	if !strings.Contains(stdout, "warning: failure notification of redirect: webhook $BOXSWAP_TEST_GONE_HOOK: ") || strings.Contains(stdout, "secret") {
		t.Errorf("stdout:\n%s", stdout)
	}
	code, stdout, _ = runCLI(t, "-c", cfg, "log")
	if code != 0 || !regexpFind(`notify-failed +failure notification of redirect`, stdout) {
		t.Errorf("log does not record the failed notification:\n%s", stdout)
	}
}
