package state

import (
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Summaries returns a Summary of every attempt, oldest first, without
// decoding their steps. An attempt written before summaries existed is
// summarized from its full record.
func (s *Store) Summaries() ([]Summary, error) {
	var all []Summary
	err := s.view(func(tx *bolt.Tx) error {
		sums := bucket(tx, bucketSummaries)
		return forEach(bucket(tx, bucketAttempts), func(k, v []byte) error {
			if sums != nil {
				if sv := sums.Get(k); sv != nil {
					var sm Summary
					if err := json.Unmarshal(sv, &sm); err != nil {
						return s.corrupt(fmt.Errorf("summary %d: %w", btoi(k), err))
					}
					all = append(all, sm)
					return nil
				}
			}
			a, err := s.decodeAttempt(k, v)
			all = append(all, summarize(a))
			return err
		})
	})
	return all, err
}

// Approve records an operator's approval of a gate (When and Who default to
// now and the store's Who). It records no history event.
func (s *Store) Approve(a Approval) error {
	if a.When.IsZero() {
		a.When = time.Now()
	}
	if a.Who == "" {
		a.Who = s.me()
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketApprovals)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		return putJSON(b, itob(seq), a)
	})
}

// Approvals returns all approvals, oldest first.
func (s *Store) Approvals() ([]Approval, error) {
	var all []Approval
	err := s.view(func(tx *bolt.Tx) error {
		return forEach(bucket(tx, bucketApprovals), func(k, v []byte) error {
			var a Approval
			if err := json.Unmarshal(v, &a); err != nil {
				return s.corrupt(fmt.Errorf("approval %d: %w", btoi(k), err))
			}
			all = append(all, a)
			return nil
		})
	})
	return all, err
}

// Record appends e to the history, assigning its Seq (and Time and Who when
// they are empty).
func (s *Store) Record(e Event) error {
	return s.update(func(tx *bolt.Tx) error { return s.addEvent(tx, e) })
}

// History returns all events, oldest first.
func (s *Store) History() ([]Event, error) {
	var all []Event
	err := s.view(func(tx *bolt.Tx) error {
		return forEach(bucket(tx, bucketHistory), func(k, v []byte) error {
			var e Event
			if err := json.Unmarshal(v, &e); err != nil {
				return s.corrupt(fmt.Errorf("history event %d: %w", btoi(k), err))
			}
			all = append(all, e)
			return nil
		})
	})
	return all, err
}

// Me is "user@host" of this process, for history and approvals.
func Me() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if name == "" {
		name = strconv.Itoa(os.Getuid())
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return name + "@" + host
}

func (s *Store) me() string {
	if s.who == "" {
		return Me()
	}
	return s.who
}

// Stamped is e as history records it, in either backend: numbered seq,
// timed now and by who unless it already says when and who.
func (e Event) Stamped(seq uint64, who string) Event {
	e.Seq = seq
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if e.Who == "" {
		e.Who = who
	}
	return e
}

func (s *Store) addEvent(tx *bolt.Tx, e Event) error {
	b := tx.Bucket(bucketHistory)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	return putJSON(b, itob(seq), e.Stamped(seq, s.me()))
}

func summarize(a Attempt) Summary {
	sm := Summary{ID: a.ID, Cycle: a.Cycle, Event: a.Event, From: a.From, To: a.To, Status: a.Status,
		Command: a.Command, Started: a.Started, Ended: a.Ended, Error: a.Error, FailedStep: a.FailedStep, Steps: len(a.Steps)}
	for _, st := range a.Steps {
		if st.Status == StepDone {
			sm.Done++
		}
	}
	return sm
}
