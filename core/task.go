package core

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
)

// Task is a task definition: an identifier and the handler that runs its
// jobs. Build one with NewTask (typed payload) or RawTask (raw JSON) and pass
// a set of them to a worker through WorkerOptions.Tasks; the value can be
// kept and shared freely.
type Task struct {
	identifier string
	run        func(ctx context.Context, job *Job) error
}

// Identifier returns the task's identifier.
func (t Task) Identifier() string { return t.identifier }

// NewTask defines a task whose payload decodes into P; the identifier comes
// from P's TaskIdentifier method (implement it on the value type). A payload
// that does not decode into P fails the job for good at once, since no retry
// can fix it: last_error is a *PayloadError's text, naming the task and the
// decode error.
func NewTask[P TaskPayload](handler func(ctx context.Context, job *Job, payload P) error) Task {
	var zero P
	id := safeIdentifier(zero)
	if handler == nil {
		return Task{identifier: id}
	}
	return Task{identifier: id, run: func(ctx context.Context, job *Job) error {
		var p P
		if err := json.Unmarshal(job.Payload, &p); err != nil {
			return FailPermanently(&PayloadError{Task: job.TaskIdentifier, Err: err})
		}
		return handler(ctx, job, p)
	}}
}

// RawTask defines a task by identifier; the handler reads job.Payload itself.
func RawTask(identifier string, handler func(ctx context.Context, job *Job) error) Task {
	return Task{identifier: identifier, run: handler}
}

// safeIdentifier calls TaskIdentifier on a zero value; a method that panics
// on it (a pointer receiver reading a field, say) yields "" and so a clear
// error from NewWorker instead of a crash.
func safeIdentifier(p TaskPayload) (id string) {
	defer func() {
		if recover() != nil {
			id = ""
		}
	}()
	return p.TaskIdentifier()
}

// PayloadError is a job failure caused by a payload that does not decode
// into the task's payload type. NewTask and NewBatchTask return it wrapped
// by FailPermanently; errors.As finds it.
type PayloadError struct {
	Task string
	Err  error
}

func (e *PayloadError) Error() string {
	return fmt.Sprintf("gworker: task %q: payload does not decode: %v", e.Task, e.Err)
}

func (e *PayloadError) Unwrap() error { return e.Err }

type ctxKey int

const (
	ctxKeyJob ctxKey = iota
	ctxKeyWorker
)

// handlerContext carries the worker and the job a handler runs for: one
// value for both keys, since every job starts with one.
type handlerContext struct {
	context.Context
	w   *Worker
	job *Job
}

func (c *handlerContext) Value(key any) any {
	switch key {
	case ctxKeyWorker:
		return c.w
	case ctxKeyJob:
		return c.job
	}
	return c.Context.Value(key)
}

// LoggerFromContext returns, inside a handler, the worker's logger with the
// running job's fields (job_id, task, attempts, worker). Elsewhere it returns
// slog.Default().
func LoggerFromContext(ctx context.Context) *slog.Logger {
	w, _ := ctx.Value(ctxKeyWorker).(*Worker)
	j, _ := ctx.Value(ctxKeyJob).(*Job)
	if w == nil || j == nil {
		return slog.Default()
	}
	return w.jobLogger(j)
}

// UtilsFromContext returns, inside a handler, a client on the worker's
// database and schema, for adding more jobs. It returns nil elsewhere.
func UtilsFromContext(ctx context.Context) *Utils {
	w, _ := ctx.Value(ctxKeyWorker).(*Worker)
	if w == nil {
		return nil
	}
	return w.utils
}

// JobFromContext returns the running job inside a handler, or nil.
func JobFromContext(ctx context.Context) *Job {
	j, _ := ctx.Value(ctxKeyJob).(*Job)
	return j
}
