// Package e2e rehearses whole upgrade cycles with the boxswap binary against
// the two-box lab (test/lab): real sshd boxes, real rsync between them, real
// reboots. It has no code of its own, only tests.
//
// # Basics
//
// TestMain builds cmd/boxswap once into a temporary directory; each test
// starts a fresh lab in t.TempDir() on free ports, drives it with that
// binary exactly as an operator would (boxswap -c DIR/boxes.yaml --yes next,
// resume, where --json, log --json) and checks the result on the boxes
// themselves: which box answers the production and development addresses,
// /etc/os-release, the user data's checksums and the settings files.
//
// # Caveats
//
// The lab needs Linux, root and /usr/sbin/sshd. Without them the tests skip,
// except when CI=true or BOXSWAP_LAB_REQUIRED=1, where a test that cannot
// run fails: CI must never pass by skipping. The test binary is also the
// lab's binary (the boxes' processes and shims re-execute it), which is why
// TestMain calls lab.Child before anything else.
package e2e
