package steps

import (
	"context"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// TestHostileValuesArriveAsOneWord runs each kind's described commands
// through the real sh, with every external command replaced by a stub
// that logs its arguments: a value from boxes.yaml must arrive as exactly
// one argument, and nothing it contains may run.
func TestHostileValuesArriveAsOneWord(t *testing.T) {
	for _, v := range hostile {
		p := SyncParams{Src: "a", Dst: "b", DstHost: "h", DstUser: "root", Folder: v, Root: "/nbhosting", SrcUnit: "u"}
		pf := p
		pf.File, pf.Exclude, pf.Address = true, []string{v}, v
		cases := []struct {
			name string
			step Step
			want string // one argument some command must receive
		}{
			{"UnitUp", UnitUp("i", "b", v), v},
			{"UnitDown", UnitDown("i", "b", v), v},
			{"UnitState", UnitState("i", "b", v, true, true), v},
			{"StopServices", StopServices("i", "b", []string{"docker", v}), v},
			{"Sync", Sync("i", p), p.srcDir()},
			{"Sync dst", Sync("i", p), "root@h:" + p.dstDir()},
			{"Sync file", Sync("i", pf), path.Join("/nbhosting", v)},
			{"Sync exclude", Sync("i", pf), "--exclude=" + v},
			{"Sync address", Sync("i", pf), v},

			{"FreeDisk", FreeDisk("i", "b", []string{v}, 1), v},
			{"Branch", Branch("i", "b", v, "f29"), v},
			{"Rename", Rename("i", "b", "/nbhosting", v, ".prod"), path.Join("/nbhosting", v) + ".prod.old"},
			{"RecordStatus", RecordStatus("i", "b", []string{v}), v},
			{"Settings", Settings("i", "b", "/x/"+v, prodLines, ""), "/x/" + v},
		}
		for _, tc := range cases {
			r := newShRunner(t)
			log := filepath.Join(r.dir, "log")
			for _, name := range []string{"systemctl", "dnf", "rpm", "rsync", "git", "mv", "rm", "cp", "cat", "find", "head", "docker", "pip3", "python3", "df", "touch", "getent", "stat"} {
				r.stub(t, name, `printf '%s\0' "${0##*/}" "$@" >> `+quote(log)+`; printf '\n\0' >> `+quote(log))
			}
			for _, cmd := range tc.step.Describe().Commands {
				if strings.Contains(cmd, "<") {
					continue // a placeholder for what the box answers
				}
				if _, err := r.Run(context.Background(), cmd, os.Stderr, os.Stderr); err != nil {
					t.Fatalf("%s %q: %s: %v", tc.name, v, cmd, err)
				}
			}
			b, _ := os.ReadFile(log)
			found := false
			for _, call := range strings.Split(string(b), "\n\x00") {
				args := strings.Split(strings.TrimSuffix(call, "\x00"), "\x00")
				if args[0] == "touch" {
					t.Errorf("%s %q: injected command ran: %q", tc.name, v, args)
				}
				if args[0] == "rm" && !strings.HasSuffix(args[len(args)-1], ".prod.old") {
					t.Errorf("%s %q: unexpected rm %q", tc.name, v, args)
				}
				for _, a := range args[1:] {
					found = found || a == tc.want
				}
			}
			if !found {
				t.Errorf("%s %q: no command got %q as one argument; log %q", tc.name, v, tc.want, b)
			}
		}
	}
}
