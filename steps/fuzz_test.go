package steps

import (
	"regexp"
	"strings"
	"testing"
)

func FuzzParseRsyncStats(f *testing.F) {
	f.Add("Number of files: 4 (reg: 2, dir: 2)\nNumber of deleted files: 2 (reg: 2)\nNumber of regular files transferred: 2\nTotal file size: 6 bytes\n")
	f.Add("Number of files: 1,234\nNumber of files transferred: 1.000\n")
	f.Add("Number of files:\n")
	f.Fuzz(func(t *testing.T, s string) {
		st, err := ParseRsyncStats(s)
		if err != nil {
			return
		}
		if st.Files < 0 || st.Created < 0 || st.Deleted < 0 || st.Transferred < 0 || st.TotalSize < 0 || st.TransferredSize < 0 {
			t.Fatalf("negative count %+v from %q", st, s)
		}
		if !strings.Contains(s, "Number of files:") {
			t.Fatalf("stats without a Number of files line: %q", s)
		}
	})
}

func FuzzParseOSRelease(f *testing.F) {
	f.Add(fedora29)
	f.Add("# c\n\nX='a b'\nY=\"q\\\"\"\n")
	f.Add("X=\"\\")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseOSRelease(s)
		if err != nil {
			return
		}
		for k := range m {
			if !isIdent(k) {
				t.Fatalf("key %q from %q", k, s)
			}
		}
		// A value written back in double quotes reads the same.
		for k, v := range m {
			if strings.ContainsAny(v, "\n") {
				t.Fatalf("multi-line value %q", v)
			}
			back := k + "=\"" + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`").Replace(v) + "\""
			m2, err := ParseOSRelease(back)
			if err != nil || m2[k] != v {
				t.Fatalf("round trip of %q: %q, %v", v, m2[k], err)
			}
		}
	})
}

func FuzzParseDF(f *testing.F) {
	f.Add("Filesystem 1-blocks Used Available Capacity Mounted on\n/dev/vda 270553174016 12263481344 85529812992 13% /\n")
	f.Add("Filesystem\na b 1 2 3 - c d\n")
	f.Fuzz(func(t *testing.T, s string) {
		rows, err := parseDF(s)
		if err != nil {
			return
		}
		for _, r := range rows {
			if r.Size < 0 || r.Used < 0 || r.Avail < 0 || r.Mount == "" {
				t.Fatalf("bad row %+v from %q", r, s)
			}
		}
	})
}

func FuzzParseSystemctl(f *testing.F) {
	for _, s := range []string{"active\n", "inactive", "failed", "enabled", "static", "masked", "", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if state, running, err := parseActive(s); err == nil {
			if _, known := unitActiveStates[state]; !known || running != unitActiveStates[state] {
				t.Fatalf("is-active %q -> %q %v", s, state, running)
			}
		} else if running {
			t.Fatal("running on error")
		}
		if state, enabled, err := parseEnabled(s); err == nil {
			if _, known := unitEnabledStates[state]; !known || (enabled && !strings.HasPrefix(state, "enabled")) {
				t.Fatalf("is-enabled %q -> %q %v", s, state, enabled)
			}
		} else if enabled {
			t.Fatal("enabled on error")
		}
	})
}

// FuzzSwitchLines checks SwitchLines against a regexp reading of the
// rule: lines matching ^key *= (not ==) become key = "value", every other
// byte stays.
func FuzzSwitchLines(f *testing.F) {
	f.Add(devSettings, "server_name", "nbhosting.inria.fr")
	f.Add("a = 1\r\nserver_name = 'x'\r\n", "server_name", `q"\`)
	f.Add("server_name=1", "server_name", "\n")
	f.Add("x  =  1\nx==2\nxy = 3\n x = 4", "x", "v")
	f.Fuzz(func(t *testing.T, content, key, value string) {
		out, changed, err := SwitchLines(content, texts([][2]string{{key, value}}))
		if err != nil {
			return
		}
		lit, _ := pyString(value)
		re := regexp.MustCompile(`^` + regexp.QuoteMeta(key) + ` *=([^=]|$)`)
		in, got := strings.Split(content, "\n"), strings.Split(out, "\n")
		if len(in) != len(got) {
			t.Fatalf("%d lines became %d", len(in), len(got))
		}
		matched, diff := 0, 0
		for i := range in {
			body, cr := strings.CutSuffix(in[i], "\r")
			if !re.MatchString(body) {
				if got[i] != in[i] {
					t.Fatalf("line %d changed: %q -> %q", i, in[i], got[i])
				}
				continue
			}
			matched++
			want := key + " = " + lit
			if cr {
				want += "\r"
			}
			if got[i] != want {
				t.Fatalf("line %d: %q, want %q", i, got[i], want)
			}
			if got[i] != in[i] {
				diff++
			}
		}
		if matched == 0 || diff != changed {
			t.Fatalf("matched %d, changed %d, counted %d", matched, diff, changed)
		}
		if _, n, err := SwitchLines(out, texts([][2]string{{key, value}})); err != nil || n != 0 {
			t.Fatalf("not idempotent: %d %v", n, err)
		}
	})
}
