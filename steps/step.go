package steps

import (
	"context"
	"errors"
	"io"

	"boxswap/boxes"
)

// Step is one idempotent action of a transition on one box.
//
// The engine calls Check before Apply (and again when it finds a step that
// was running when boxswap stopped): a step whose Check says done is not
// applied. After Apply returns nil the engine calls Check again, and the
// step fails unless Check then says done: an exit status is not proof.
// A step whose Check cannot confirm its Apply says why in
// Description.NoCheckAfter. Apply must be safe to call again after it was
// interrupted at any point. Undo reverts a done Apply; it returns
// ErrIrreversible when nothing can (the reboot into the new release), and
// must itself be safe to repeat.
type Step interface {
	// ID is stable across runs and releases: "redirect/final-sync/students".
	ID() string
	// Describe says what the step does, where, and the exact commands.
	Describe() Description
	// Check reports whether the step's effect is already in place. why says
	// what was seen, for the operator.
	Check(ctx context.Context, env *Env) (done bool, why string, err error)
	Apply(ctx context.Context, env *Env) error
	Undo(ctx context.Context, env *Env) error
}

// Description is what plan and the state show of a step.
type Description struct {
	Box          string   `json:"box"`
	Text         string   `json:"text"`
	Commands     []string `json:"commands"`               // Apply's remote commands, after substitution
	Undo         []string `json:"undo,omitempty"`         // Undo's remote commands
	Irreversible bool     `json:"irreversible,omitempty"` // Undo returns ErrIrreversible
	// Retry says Apply may simply be repeated when its outcome is unknown
	// (a dropped connection); otherwise the engine re-checks first.
	Retry bool `json:"retry,omitempty"`
	// NoCheckAfter, when set, says why Check is not run after Apply (it
	// always says not done, or only repeats what Apply checked); empty,
	// a successful Apply is confirmed by Check.
	NoCheckAfter string `json:"no_check_after,omitempty"`
	// RevertTo, when set, names an earlier step of the transition: when
	// this step fails, the engine undoes the done steps back to that one
	// (the check through the production address moves production back
	// to the old box) and records the transition failed.
	RevertTo string `json:"revert_to,omitempty"`
}

// Env is what a step may use. The engine builds one per transition.
type Env struct {
	// Boxes gives the Runner of a box by name.
	Boxes func(name string) (boxes.Runner, error)
	// Output returns where a box's remote output goes (the engine prefixes
	// lines with the box name, keeps a tail and writes the full log).
	Output func(box string) io.Writer
	// Facts persist across runs of the same cycle (python version, pip
	// list, boot id before a reboot). Set writes through to the state.
	Facts Facts
	// Approve asks the operator to approve a gate; it returns who approved,
	// or an error wrapping ErrNotApproved.
	Approve func(ctx context.Context, gate, prompt string) (who string, err error)
	// Progress tells the operator what a long step is waiting for.
	Progress func(format string, args ...any)
	// Force holds the overrides the operator gave on the command line
	// (e.g. "max-delete"); steps that honour one say so in their error.
	Force map[Guard]bool
}

// Facts is a small persistent key/value store scoped to the current cycle.
type Facts interface {
	Get(key string) (string, bool)
	Set(key, value string) error
	Delete(key string) error
}

var (
	// ErrIrreversible is returned by Undo of a step that cannot be undone.
	ErrIrreversible = errors.New("step cannot be undone")
	// ErrNotApproved is returned by a gate the operator did not approve.
	ErrNotApproved = errors.New("not approved")
	// ErrRefused is returned by a guard that refused to act (wrong
	// direction, empty source, too many deletions); nothing was changed.
	ErrRefused = errors.New("refused")
	// ErrHalted is returned by a step that changed something (stopped a
	// unit, took an address) and then found a box not as the steps after
	// it need: unlike a refusal, something was changed, and the message
	// says what and where production stands.
	ErrHalted = errors.New("halted")
)

// BoxLabel is how a step's box is named to the operator: a step with no
// box (a gate) is the operator's.
func BoxLabel(box string) string {
	if box == "" {
		return "operator"
	}
	return box
}
