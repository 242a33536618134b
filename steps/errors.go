package steps

import "errors"

// ErrPrecondition is returned by the Apply of a check-only step (preflight,
// unit state, os-release, free disk) when the box is not as required;
// nothing was changed. The message says what was seen and what to do.
var ErrPrecondition = errors.New("precondition not met")

// Guards lists the guards an operator may override with --force NAME.
var Guards = []string{ForceMaxDelete, ForceCheckout}
