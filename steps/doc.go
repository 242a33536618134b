// Package steps holds the step kinds a transition is made of, one small
// file per kind: address units, app services, box-to-box rsync, dnf, apt
// (sources, update, full-upgrade), reboot-and-wait, os-release, pip snapshot/reinstall, settings lines,
// operator commands, the devel branch, the backup rename, container
// cleanup, approval gates, preflight checks and the status record.
//
// # Basics
//
// Every constructor returns a Step; the caller (fsm) gives it a stable ID
// and the box names. A step reaches its box only through Env.Boxes, sends
// all remote output (stdout and stderr) to Env.Output, and keeps what must
// survive a crash (boot id, python version, pip list, the branch before,
// approvals) in Env.Facts. Describe lists the exact command lines Apply
// sends, after quoting: every value from boxes.yaml or from a box goes
// through boxes.Quote. Operator command lines (install, hooks) are run as
// given. TestPlanIsWhatApplySends pins that: it runs every kind's Apply and
// Undo with hostile values and fails on a command Describe does not list
// (read-only queries, built by the same functions, aside; the drifts not
// fixed yet are listed there, with why). A new kind goes into its kinds.
//
// # Long commands
//
// Package transactions (AptUpgrade, DnfUpgrade, DnfInstall, DnfDownload),
// install.sh (Install) and the pip reinstall run detached from the SSH
// channel as a transient unit, systemd-run --unit UnitName(id), their
// output and exit status kept on the box under RunDir (see detached.go): a
// lost link or a killed boxswap does not stop them; the next Apply
// re-attaches to a running one or reads the result of a finished one, and
// never starts a second copy. The transaction steps check the package
// database (PkgManager: Dpkg, Rpm) before and after, and recover an
// interrupted transaction (a detached run of its own, recorded in the fact
// BOX/recovery/ID) before running again. Each step's Check reports done
// right after a successful Apply, and recognises hand work (release
// reached, download complete, reboot done).
//
// # Errors
//
// A command that exits non-zero gives an *ExitError ("thermals: systemctl
// stop -- nbh-uwsgi: exit 1: <last line>"); use errors.As for its Code. A
// Runner error (boxes.ErrOutcomeUnknown, boxes.ErrUnreachable) is wrapped
// unchanged, so errors.Is finds it. Guards that refuse to act wrap
// ErrRefused (Sync: wrong direction, empty source, more deletions than
// max_delete unless Env.Force["max-delete"]); check-only kinds wrap
// ErrPrecondition; a step that changed a box and then finds it not as the
// next steps need (the address left behind, not taken, held twice) wraps
// ErrHalted; gates wrap ErrNotApproved; Undo of the reboot and of the
// container cleanup returns ErrIrreversible.
//
// # Caveats
//
// Apply must be safe to call again after an interruption at any point,
// and Check is what the engine trusts on resume: a Check error means "could
// not tell", never "done". Check may run remote read-only commands (Sync
// runs an rsync dry run). Settings never streams the settings file to the
// output (it holds secrets) and backs it up per step and cycle, in
// FILE.boxswap-orig-<step id>, so an undo never restores an older cycle's
// copy. AptSources likewise names what it leaves after the upgrade
// (FILE.boxswap-orig-<from>-<to>.bak, FILE.boxswap-off-<from>-<to>.disabled:
// endings apt ignores silently). Sync passes --protect-args so the
// destination path is not re-parsed by the destination's shell.
package steps
