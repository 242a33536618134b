package steps

// Command runs an operator command line on box as given (install.sh,
// hooks): it is the operator's shell, so it is not quoted. check, when
// set, is run first: exit 0 means done. undo, when set, is what rollback
// runs; otherwise Undo does nothing.
func Command(id, box, text, run, check, undo string) Step {
	d := Description{Box: box, Text: text, Commands: []string{run}}
	if undo != "" {
		d.Undo = []string{undo}
	}
	return &cmdStep{box: box, cmd: run, check: check, undo: undo, base: base{id: id, desc: d}}
}

// Install runs the operator's install command line on box (install.sh),
// detached from the SSH channel (see detached): a lost link neither kills
// it nor, on resume, starts it a second time while it runs. Done once that
// run exited 0 in this cycle. Undo does nothing but forget the run.
func Install(id, box, text, run string) Step {
	d := Description{Box: box, Text: text + " (as unit " + UnitName(id) + ")", Commands: []string{run}, Retry: true}
	return &cmdStep{box: box, cmd: run, detach: true, label: "install", base: base{id: id, desc: d}}
}
