package steps

import "errors"

// ErrPrecondition is returned by the Apply of a check-only step (preflight,
// unit state, os-release, free disk) when the box is not as required;
// nothing was changed. The message says what was seen and what to do.
var ErrPrecondition = errors.New("precondition not met")

// Guard names a guard an operator may override with --force NAME: a
// refusal names it, and Env.Force says which were overridden.
type Guard string

// Guards lists the guards an operator may override with --force NAME.
var Guards = []Guard{ForceMaxDelete, ForceCheckout}

// ParseGuard returns the guard named name, or false when no guard is
// named so (--force with an unknown name is refused before any work).
func ParseGuard(name string) (Guard, bool) {
	for _, g := range Guards {
		if string(g) == name {
			return g, true
		}
	}
	return "", false
}

// GuardNames are the guards' names, for a hint.
func GuardNames() []string {
	out := make([]string, len(Guards))
	for i, g := range Guards {
		out[i] = string(g)
	}
	return out
}
