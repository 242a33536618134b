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
