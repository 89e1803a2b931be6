package core

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// BatchFailure is how a batch job fails when only some of its items failed:
// the job is retried with Payload, a JSON array of just the failed items, so
// the items that succeeded are not run again. NewBatchTask produces it; a
// RawTask handler may return one too.
type BatchFailure struct {
	Payload json.RawMessage // the failed items' original JSON, as an array
	Items   []ItemError     // the failures, in item order
}

// ItemError is the failure of one item of a batch job.
type ItemError struct {
	Index int // position in the job's payload array
	Err   error
}

func (e *BatchFailure) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Batch failures (%d items; they will be retried alone):", len(e.Items))
	for _, it := range e.Items {
		fmt.Fprintf(&b, "\n[%d] %v", it.Index, it.Err)
	}
	return b.String()
}

// Unwrap returns the items' errors.
func (e *BatchFailure) Unwrap() []error {
	errs := make([]error, len(e.Items))
	for i, it := range e.Items {
		errs[i] = it.Err
	}
	return errs
}

// NewBatchTask defines a task whose payload is a JSON array of items of type
// T (graphile-worker's batch jobs); the identifier comes from T. The handler
// gets every item at once and returns either a non-nil error, which fails
// the whole job, or one result per item, in order, nil for success.
//
// When some items fail, the job is retried with a payload holding only those
// items (their original JSON), and last_error lists them. An item that does
// not decode into T fails on its own (the handler does not see it). A result
// count that differs from the item count, or a payload that is not a
// non-empty array, fails the whole job.
func NewBatchTask[T TaskPayload](handler func(ctx context.Context, job *Job, items []T) ([]error, error)) Task {
	var zero T
	id := safeIdentifier(zero)
	if handler == nil {
		return Task{identifier: id}
	}
	return Task{identifier: id, run: func(ctx context.Context, job *Job) error {
		var raw []json.RawMessage
		if err := json.Unmarshal(job.Payload, &raw); err != nil || raw == nil {
			return &PayloadError{Task: job.TaskIdentifier, Err: fmt.Errorf("a batch job's payload must be a JSON array of items, got %.100s", job.Payload)}
		}
		if len(raw) == 0 {
			return &PayloadError{Task: job.TaskIdentifier, Err: fmt.Errorf("a batch job's payload is an empty array")}
		}
		var failed []ItemError
		items := make([]T, 0, len(raw))
		index := make([]int, 0, len(raw)) // items[k] is raw[index[k]]
		for i, r := range raw {
			var it T
			if err := json.Unmarshal(r, &it); err != nil {
				failed = append(failed, ItemError{Index: i, Err: fmt.Errorf("item does not decode: %w", err)})
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
					failed = append(failed, ItemError{Index: index[k], Err: err})
				}
			}
		}
		if len(failed) == 0 {
			return nil
		}
		slices.SortFunc(failed, func(a, b ItemError) int { return a.Index - b.Index })
		keep := make([]json.RawMessage, len(failed))
		for i, f := range failed {
			keep[i] = raw[f.Index]
		}
		payload, err := json.Marshal(keep)
		if err != nil {
			return err
		}
		return &BatchFailure{Payload: payload, Items: failed}
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
