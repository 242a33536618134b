package steps

// The engine runs a step's Check after its Apply succeeded, and fails the
// step unless Check then says done. These are the kinds where that check
// makes no sense, each with the reason Description.NoCheckAfter gives
// (plan shows it): one place, so that the list is read at a glance.

// Check-only steps: Apply fails unless what Check sees is as wanted, so a
// check after it would only run the same command again.
const checkOnly = "it only looks, and fails unless the box is as wanted"

func (s *reachableStep) Describe() Description { return noCheckAfter(s.desc, checkOnly) }
func (s *freeDiskStep) Describe() Description  { return noCheckAfter(s.desc, checkOnly) }
func (s *osReleaseStep) Describe() Description { return noCheckAfter(s.desc, checkOnly) }
func (s *unitStateStep) Describe() Description { return noCheckAfter(s.desc, checkOnly) }

// Describe of a command without a check command (dnf upgrade and download,
// apt-get update and full-upgrade, install.sh, hooks without check): its
// Check always says not done, so nothing can confirm it but its exit
// status.
func (s *cmdStep) Describe() Description {
	if s.check != "" {
		return s.desc
	}
	return noCheckAfter(s.desc, "it has no check command: its exit status is all there is")
}

// Describe of the epilogue's record of the boxes: its Check always says
// not done (it is recorded afresh each time).
func (s *statusStep) Describe() Description {
	return noCheckAfter(s.desc, "it records what it sees each time: there is nothing to confirm")
}

// Describe of a sync: the final sync and a move's pre-sync always run
// (their Check says not done: telling costs a scan of the whole folder, as
// much as doing it, and inside the cut-over window); a plain pre-sync
// copies a live folder, which its writers change right after, so a dry run
// after it need not come out empty. The final sync, once the writers are
// stopped, is what makes the copy exact.
func (s *syncStep) Describe() Description {
	if s.p.Final {
		return noCheckAfter(s.desc, "a check would scan the whole folder again, inside the cut-over window")
	}
	if s.p.Mux {
		return noCheckAfter(s.desc, "it only prepares the final sync")
	}
	return noCheckAfter(s.desc, "its writers change the folder again at once; the final sync makes the copy exact")
}

func noCheckAfter(d Description, why string) Description {
	d.NoCheckAfter = why
	return d
}
