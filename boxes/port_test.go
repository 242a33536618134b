package boxes

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// A port is read from its text, in decimal, whoever decodes boxes.yaml:
// yaml.v3 decoding a Box directly (as a later config reader will) reads
// 022 as 22-or-refused, never as octal 18.
func TestPortDecodesAsWritten(t *testing.T) {
	for _, tc := range []struct {
		text string
		want Port // 0: refused
	}{
		{"22", 22}, {"2222", 2222}, {"65535", 65535},
		{"022", 0}, {"0022", 0}, {"0x16", 0}, {"0o26", 0}, {"+22", 0}, {"0", 0}, {"65536", 0}, {"-1", 0}, {"22.0", 0}, {`"22"`, 0},
	} {
		var b Box
		err := yaml.Unmarshal([]byte("name: thurst\nport: "+tc.text+"\n"), &b)
		switch {
		case tc.want == 0 && err == nil:
			t.Errorf("port: %s: read as %d, want refused", tc.text, b.Port)
		case tc.want != 0 && (err != nil || b.Port != tc.want):
			t.Errorf("port: %s: %d, %v; want %d", tc.text, b.Port, err, tc.want)
		case err != nil && !strings.Contains(err.Error(), "line 2"):
			t.Errorf("port: %s: the error does not give the line: %v", tc.text, err)
		}
	}
}
