package core

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestCancellationsCancelTheRunningJobAndFailTheWaitingOne(t *testing.T) {
	w := &Worker{opts: WorkerOptions{Concurrency: 1, Clock: systemClock{}}}
	r := newRunner(w, false)
	ctx, cancel := context.WithCancelCause(context.Background())
	r.active[1] = &activeJob{job: &Job{ID: 1}, cancel: cancel}
	r.buffer.push([]*Job{{ID: 2}, {ID: 3}}, time.Now())

	r.cancels.add(cancelRequest{ID: 1, Reason: "running"})
	r.cancels.add(cancelRequest{ID: 2, Reason: "waiting"})
	r.cancels.add(cancelRequest{ID: 4, Reason: "unknown here"})
	<-r.cancels.sig
	r.applyCancels()

	var ce *CancelledError
	if !errors.As(context.Cause(ctx), &ce) || ce.Reason != "running" || r.active[1].cancelled != "running" {
		t.Fatalf("running job: cause %v, cancelled %q; want cancelled with its reason", context.Cause(ctx), r.active[1].cancelled)
	}
	if len(r.buffer) != 1 || r.buffer[0].job.ID != 3 {
		t.Fatalf("local queue holds %v, want job 3 only", queueIDs(r.buffer))
	}
	if got := r.completer.pending; len(got) != 1 || got[0].job.ID != 2 || got[0].kind != outcomeFail || got[0].message != "waiting" {
		t.Fatalf("outcomes %+v, want job 2 failed with its reason", got)
	}
	if reqs := r.cancels.take(); len(reqs) != 0 {
		t.Fatalf("%d requests left after applying them", len(reqs))
	}
}
