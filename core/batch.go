package core

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// BatchFailure is how a batch job fails when some of its items failed:
// the job is run again with Payload, a JSON array of just the items to run
// again, so the items that succeeded are not run again. Its text, listing
// the items, is recorded as last_error. NewBatchTask produces it; a RawTask
// handler may return one too.
//
// The items' errors decide what happens to the job (see NewBatchTask): an
// ordinary error retries it with backoff; when every failed item was
// snoozed (RetryAfter) or failed for good (FailPermanently), the job is
// snoozed for the longest delay; when all failed for good, it fails for
// good.
type BatchFailure struct {
	Payload json.RawMessage // the items to run again (their original JSON), as an array
	Items   []*ItemError    // the failures, in item order
}

// ItemError is the failure of one item of a batch job: errors.As finds it
// in a *BatchFailure, and it unwraps to the item's own error.
type ItemError struct {
	Index int // position in the job's payload array
	Err   error
}

func (e *ItemError) Error() string { return fmt.Sprintf("item %d: %v", e.Index, e.Err) }

func (e *ItemError) Unwrap() error { return e.Err }

func (e *BatchFailure) Error() string {
	var b strings.Builder
	st := e.steering()
	switch {
	case st.permanent:
		fmt.Fprintf(&b, "Batch failures (%d items; failed for good):", len(e.Items))
	case st.snooze:
		fmt.Fprintf(&b, "Batch failures (%d items; those not failed for good run again after %v):", len(e.Items), st.delay)
	default:
		fmt.Fprintf(&b, "Batch failures (%d items; they will be retried alone):", len(e.Items))
	}
	for _, it := range e.Items {
		fmt.Fprintf(&b, "\n[%d] %v", it.Index, it.Err)
		switch s := steeringOf(it.Err); {
		case s.permanent && !st.permanent:
			b.WriteString(" (failed for good; not run again)")
		case s.snooze && !st.snooze:
			fmt.Fprintf(&b, " (snoozed for %v; retried with the others)", s.delay)
		}
	}
	return b.String()
}

// Unwrap returns the items' errors (each an *ItemError).
func (e *BatchFailure) Unwrap() []error {
	errs := make([]error, len(e.Items))
	for i, it := range e.Items {
		errs[i] = it
	}
	return errs
}

// steering decides the job's outcome from its items: any ordinary failure
// retries it with backoff; otherwise any snoozed item snoozes it for the
// longest delay, so that every item waits at least as long as it asked;
// otherwise (every failed item failed for good) it fails for good.
func (e *BatchFailure) steering() steering {
	var out steering
	permanent := 0
	for _, it := range e.Items {
		switch s := steeringOf(it.Err); {
		case s.permanent:
			permanent++
		case s.snooze:
			out.snooze, out.delay = true, max(out.delay, s.delay)
		default:
			return steering{}
		}
	}
	if !out.snooze && permanent > 0 {
		out.permanent = true
	}
	return out
}

// NewBatchTask defines a task whose payload is a JSON array of items of type
// T (graphile-worker's batch jobs); the identifier comes from T. The handler
// gets every item at once and returns either a non-nil error, which decides
// for the whole job as a plain task's error does, or one result per item,
// in order, nil for success.
//
// When some items fail, the job fails with a *BatchFailure, whose text,
// listing the failed items, becomes last_error:
//
//   - an item failed with an ordinary error is run again: the job is
//     retried with backoff (the attempt counts) with a payload holding only
//     the items to run again, in their original JSON;
//   - an item failed with FailPermanently is not run again: it is dropped
//     from that payload, and last_error keeps its index and error;
//   - an item snoozed with RetryAfter is run again: with ordinary failures
//     it rides along with their retry; when the failed items are all
//     snoozed or failed for good, the job is snoozed (the attempt does not
//     count) for the longest of the delays, with only the snoozed items;
//   - when every failed item failed for good, the job fails for good, and
//     its payload keeps those items for inspection.
//
// An item that does not decode into T fails for good on its own (the
// handler does not see it). A payload that is not a non-empty array fails
// the job for good at once; a result count that differs from the item
// count fails it (it is retried, as a handler's bug may be fixed).
func NewBatchTask[T TaskPayload](handler func(ctx context.Context, job *Job, items []T) ([]error, error)) Task {
	var zero T
	id := safeIdentifier(zero)
	if handler == nil {
		return Task{identifier: id}
	}
	return Task{identifier: id, run: func(ctx context.Context, job *Job) error {
		var raw []json.RawMessage
		if err := json.Unmarshal(job.Payload, &raw); err != nil || raw == nil {
			return FailPermanently(&PayloadError{Task: job.TaskIdentifier, Err: fmt.Errorf("a batch job's payload must be a JSON array of items, got %.100s", job.Payload)})
		}
		if len(raw) == 0 {
			return FailPermanently(&PayloadError{Task: job.TaskIdentifier, Err: fmt.Errorf("a batch job's payload is an empty array")})
		}
		var failed []*ItemError
		items := make([]T, 0, len(raw))
		index := make([]int, 0, len(raw)) // items[k] is raw[index[k]]
		for i, r := range raw {
			var it T
			if err := json.Unmarshal(r, &it); err != nil {
				failed = append(failed, &ItemError{Index: i, Err: FailPermanently(fmt.Errorf("item does not decode: %w", err))})
				continue
			}
			items = append(items, it)
			index = append(index, i)
		}
		if len(items) > 0 {
			results, err := handler(ctx, job, items)
			if err != nil {
				return err
			}
			if len(results) != len(items) {
				return fmt.Errorf("gworker: batch task %q returned %d results for %d items; it must return one per item (nil for success)",
					job.TaskIdentifier, len(results), len(items))
			}
			for k, err := range results {
				if err != nil {
					failed = append(failed, &ItemError{Index: index[k], Err: err})
				}
			}
		}
		if len(failed) == 0 {
			return nil
		}
		slices.SortFunc(failed, func(a, b *ItemError) int { return a.Index - b.Index })
		bf := &BatchFailure{Items: failed}
		// Items failed for good are not run again, unless all failed
		// items are: then the job fails for good and keeps them.
		allPermanent := bf.steering().permanent
		keep := make([]json.RawMessage, 0, len(failed))
		for _, f := range failed {
			if allPermanent || !steeringOf(f.Err).permanent {
				keep = append(keep, raw[f.Index])
			}
		}
		payload, err := json.Marshal(keep)
		if err != nil {
			return err
		}
		bf.Payload = payload
		return bf
	}}
}

// AddBatchJob adds a batch job holding items for the task T names. Adding
// with the job key of a waiting batch job appends the items to it (add_jobs
// concatenates array payloads on a key match).
func AddBatchJob[T TaskPayload](ctx context.Context, u *Utils, items []T, spec *JobSpec) (*Job, error) {
	if len(items) == 0 {
		return nil, &ValidationError{Field: "items", Reason: "a batch job needs at least one item"}
	}
	var zero T
	return u.AddRawJob(ctx, safeIdentifier(zero), items, spec)
}
