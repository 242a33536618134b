package lab

import (
	"strings"
	"testing"
)

// The nbh-gate packages' preinst (images/debian.sh writes it, with the
// gate's name as $2) runs the gate as GateShell does: the two cannot drift
// apart unseen.
func TestDebianPreinstIsGateShell(t *testing.T) {
	raw, err := images.ReadFile("images/debian.sh")
	if err != nil {
		t.Fatal(err)
	}
	var line string
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(l, "g=/run/lab-gate/") {
			line = l
		}
	}
	got := strings.ReplaceAll(strings.ReplaceAll(line, `\$`, `$`), "$2", "dpkg-preinst")
	if want := GateShell("dpkg-preinst"); got != want {
		t.Errorf("debian.sh's preinst runs\n%s\nGateShell is\n%s", got, want)
	}
}
