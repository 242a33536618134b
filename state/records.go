package state

import (
	"time"

	"boxswap/boxes"
)

// Status is an attempt's status.
type Status string

// Attempt statuses.
const (
	Running     Status = "running"
	Interrupted Status = "interrupted"
	Failed      Status = "failed"
	RollingBack Status = "rolling-back"
	RolledBack  Status = "rolled-back"
	Done        Status = "done"
)

// StepStatus is a step's place in its lifecycle (fsm's executor moves it:
// pending → running → done | failed, done → undoing → undone).
type StepStatus string

// Step statuses.
const (
	Pending     StepStatus = "pending"
	StepRunning StepStatus = "running"
	StepDone    StepStatus = "done"
	// StepFailed: Apply returned an error with the outcome known.
	StepFailed StepStatus = "failed"
	Undoing    StepStatus = "undoing"
	Undone     StepStatus = "undone"
)

// Meta is the machine as a whole.
type Meta struct {
	Schema int   `json:"schema"`
	Phase  Phase `json:"phase"` // an fsm state: start, dev-upgraded, ...
	// Cycle counts upgrade cycles (1 for the first); From/To are the
	// releases the current cycle upgrades between, fixed when it began.
	Cycle   int       `json:"cycle"`
	From    int       `json:"from"`
	To      int       `json:"to"`
	Changed time.Time `json:"changed"`
}

// Attempt is one try at one transition, recorded before anything runs.
type Attempt struct {
	ID         uint64       `json:"id"`
	Cycle      int          `json:"cycle"`
	Event      boxes.Event  `json:"event"`
	From       Phase        `json:"from"` // phase before
	To         Phase        `json:"to"`   // phase after, once done
	Status     Status       `json:"status"`
	Command    string       `json:"command"` // next, resume, rollback
	Started    time.Time    `json:"started"`
	Ended      time.Time    `json:"ended,omitzero"`
	Error      string       `json:"error,omitempty"`
	FailedStep string       `json:"failed_step,omitempty"`
	Steps      []StepRecord `json:"steps"`
	// Configs are the boxes.yaml texts the attempt was planned from: the
	// first when it began, one more per re-plan (resume --replan). A
	// step's Plan indexes them, so that its undo is the one planned when
	// it ran.
	Configs []string `json:"configs,omitempty"`
}

// StepRecord is the progress of one planned step of an attempt.
type StepRecord struct {
	ID           string            `json:"id"`
	Box          string            `json:"box"`
	Text         string            `json:"text"`
	Commands     []string          `json:"commands,omitempty"`
	Undo         []string          `json:"undo,omitempty"` // what rollback runs, as planned
	Irreversible bool              `json:"irreversible,omitempty"`
	Plan         int               `json:"plan,omitempty"` // index in Attempt.Configs
	Status       StepStatus        `json:"status"`
	Attempts     int               `json:"attempts"`
	Started      time.Time         `json:"started,omitzero"`
	Ended        time.Time         `json:"ended,omitzero"`
	Exit         *int              `json:"exit,omitempty"`
	Why          string            `json:"why,omitempty"`   // what Check saw
	Error        string            `json:"error,omitempty"` // last error
	Tail         []string          `json:"tail,omitempty"`  // last lines of output
	Facts        map[string]string `json:"facts,omitempty"` // facts this step set
	// Marked says an operator recorded the step done by hand (mark-done):
	// the engine skips it as done.
	Marked *Mark `json:"marked,omitempty"`
}

// Mark is an operator's record that a step was done by hand.
type Mark struct {
	Who    string    `json:"who"`
	Reason string    `json:"reason"`
	When   time.Time `json:"when"`
	// Was is the step's status before it was marked.
	Was StepStatus `json:"was"`
}

// Approval is an operator's yes at a gate.
type Approval struct {
	Attempt uint64    `json:"attempt"`
	Gate    string    `json:"gate"`
	Who     string    `json:"who"`
	When    time.Time `json:"when"`
}

// Event is one line of history: what happened, to what, by whom.
type Event struct {
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	Who    string    `json:"who"`
	Kind   string    `json:"kind"` // begin, done, failed, interrupted, rollback, override, cycle, ...
	Detail string    `json:"detail"`
}

// Holder is who holds the operator lock.
type Holder struct {
	User    string    `json:"user"`
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Command string    `json:"command"`
	Since   time.Time `json:"since"`
}

// Summary is an attempt without its steps' details: what a timeline shows.
type Summary struct {
	ID         uint64      `json:"id"`
	Cycle      int         `json:"cycle"`
	Event      boxes.Event `json:"event"`
	From       Phase       `json:"from"`
	To         Phase       `json:"to"`
	Status     Status      `json:"status"`
	Command    string      `json:"command"`
	Started    time.Time   `json:"started"`
	Ended      time.Time   `json:"ended,omitzero"`
	Error      string      `json:"error,omitempty"`
	FailedStep string      `json:"failed_step,omitempty"`
	Steps      int         `json:"steps"`
	Done       int         `json:"done"`
}
