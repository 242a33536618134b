// Package e2e rehearses whole upgrade cycles with the boxswap binary against
// the two-box lab (test/lab): real sshd boxes, real rsync between them, real
// reboots. It has no code of its own, only tests, on test/labtest's harness.
//
// # Basics
//
// labtest builds cmd/boxswap once per test binary; each test starts a
// fresh lab in t.TempDir() on free ports (labtest.New), drives it with that
// binary exactly as an operator would (boxswap -c DIR/boxes.yaml --yes next,
// resume, where --json, log --json, the state file found beside boxes.yaml)
// and checks the result on the boxes themselves: which box answers the
// production and development addresses, /etc/os-release, the address
// units, the user data's checksums and the settings files.
//
// # Caveats
//
// The lab needs Linux, root, /usr/sbin/sshd and rsync. Without them the
// tests skip, except when CI=true or BOXSWAP_LAB_REQUIRED=1, where a test
// that cannot run fails: CI must never pass by skipping. The test binary is
// also the lab's binary (the boxes' processes and shims re-execute it),
// which is why TestMain is labtest.Main.
package e2e
