package steps

import (
	"context"
	"errors"
	"testing"

	"boxswap/boxes"
)

const fedora29 = `NAME=Fedora
VERSION="29 (Server Edition)"
ID=fedora
VERSION_ID=29
PLATFORM_ID="platform:f29"
PRETTY_NAME="Fedora 29 (Server Edition)"
ANSI_COLOR="0;34"
CPE_NAME="cpe:/o:fedoraproject:fedora:29"
HOME_URL="https://fedoraproject.org/"
REDHAT_SUPPORT_PRODUCT_VERSION=29
VARIANT="Server Edition"
VARIANT_ID=server
`

func TestParseOSRelease(t *testing.T) {
	m, err := ParseOSRelease(fedora29)
	if err != nil || m["VERSION_ID"] != "29" || m["VARIANT"] != "Server Edition" || m["ANSI_COLOR"] != "0;34" {
		t.Fatalf("fedora: %v %v", m, err)
	}
	for _, tc := range []struct {
		in, key, want string
		err           bool
	}{
		{"# comment\n\nVERSION_ID=27\n", "VERSION_ID", "27", false},
		{"  VERSION_ID='27'  \n", "VERSION_ID", "27", false},
		{`X="a \"b\" \$c \\d \x"`, "X", `a "b" $c \d \x`, false},
		{"X=\n", "X", "", false},
		{"X=\"\"", "X", "", false},
		{"X=a\nX=b\n", "X", "b", false},
		{"X=\"unterminated\n", "", "", true},
		{"X='a'b'\n", "", "", true},
		{"X=a b\n", "", "", true},
		{"not a line\n", "", "", true},
		{"1X=a\n", "", "", true},
		{"=a\n", "", "", true},
		{"X=\"a\"b\n", "", "", true},
		{"X='\n", "", "", true},
	} {
		m, err := ParseOSRelease(tc.in)
		if (err != nil) != tc.err || (!tc.err && m[tc.key] != tc.want) {
			t.Errorf("%q: %v %v", tc.in, m, err)
		}
	}
}

func TestOSReleaseStep(t *testing.T) {
	ctx := context.Background()
	f := &fakeRunner{script: func(string) reply { return reply{out: fedora29} }}
	te := newEnv(map[string]boxes.Runner{"thermals": f})
	if done, why, err := OSRelease("id", "thermals", 29, "Fedora 29").Check(ctx, te.Env); !done || err != nil || why != "thermals runs Fedora 29" {
		t.Fatalf("check = %v %q %v", done, why, err)
	}
	err := Release("id", "thermals", 27, "Fedora 27").Apply(ctx, te.Env)
	if !errors.Is(err, ErrPrecondition) || err.Error()[:len("thermals runs Fedora 29, expected 27")] != "thermals runs Fedora 29, expected 27" {
		t.Fatalf("err = %v", err)
	}
	if !equalStrings(f.sent(), []string{"cat /etc/os-release", "cat /etc/os-release"}) {
		t.Errorf("sent %q", f.sent())
	}
	debian := &fakeRunner{script: func(string) reply {
		return reply{out: "PRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"13\"\nVERSION_CODENAME=trixie\nID=debian\n"}
	}}
	s := OSRelease("id", "thermals", 13, "trixie (release 13)")
	if done, why, err := s.Check(ctx, newEnv(map[string]boxes.Runner{"thermals": debian}).Env); !done || err != nil || why != "thermals runs Debian GNU/Linux 13" ||
		s.Describe().Text != "check that thermals runs trixie (release 13)" {
		t.Fatalf("debian check = %v %q %v", done, why, err)
	}
	n, err := ReadRelease(ctx, f)
	if err != nil || n != 29 {
		t.Fatalf("ReadRelease = %d %v", n, err)
	}
	for _, bad := range []reply{{out: "ID=fedora\n"}, {out: "VERSION_ID=rawhide\n"}, {exit: 1, errout: "cat: /etc/os-release: No such file"}, {err: boxes.ErrUnreachable}} {
		if _, err := ReadRelease(ctx, &fakeRunner{script: func(string) reply { return bad }}); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
