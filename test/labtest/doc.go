// Package labtest holds what the lab's end-to-end and reliability tests
// share: a lab per test, the boxswap binary built once, running it and
// reading its answers, and observing the boxes from outside (which box
// answers which address, os-release, data checksums, reboots, install.sh
// runs) while boxswap acts on them.
//
// # Basics
//
// A test package calls Main from its TestMain: the test binary is also the
// lab's binary (boxes, supervisors and shims are it, re-executed). Each
// test calls New, which fails in CI (CI=true or BOXSWAP_LAB_REQUIRED=1)
// and skips elsewhere when the lab cannot run (not root, not Linux, no
// sshd), starts a lab in t.TempDir and takes it down in t.Cleanup.
//
// # Caveats
//
// Checksums read the boxes' overlay upper dirs from this machine: the data
// root is opaque in the overlay, so the upper dir holds all of it, even
// while a box is down. The production prober and the unit watcher poll at
// a fixed rate; the gaps they report are bounded by their period.
package labtest
