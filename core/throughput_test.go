package core_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/internal/clocktest"
)

// Heartbeats write what the worker finished, per task, and Throughput
// reads it back.
func TestHeartbeatsWriteThroughput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	snoozed := make(chan struct{}, 1)
	clock := clocktest.New(time.Now())
	w, _ := b.worker(t, core.WorkerOptions{
		Clock: clock,
		Tasks: []core.Task{
			core.RawTask("ok", func(context.Context, *core.Job) error { return nil }),
			core.RawTask("bad", func(context.Context, *core.Job) error { return errors.New("boom") }),
			// A snooze neither completes nor fails: the job runs again.
			core.RawTask("later", func(context.Context, *core.Job) error {
				snoozed <- struct{}{}
				return core.RetryAfter(time.Hour, nil)
			}),
		},
	})
	b.add(t, "ok", nil, nil)
	b.add(t, "ok", nil, nil)
	b.add(t, "bad", nil, &core.JobSpec{MaxAttempts: 1}) // runs once
	later := b.add(t, "later", nil, nil)
	stop := runInBackground(t, w)
	<-snoozed
	totals := func() (map[string][2]int64, error) {
		tp, err := b.utils.Throughput(b.ctx, 0)
		if err != nil {
			return nil, err
		}
		m := map[string][2]int64{}
		for _, p := range tp.Points {
			if p.WorkerID != w.ID() {
				return nil, errors.New("a point of another worker: " + p.WorkerID)
			}
			n := m[p.Task]
			n[0] += p.Completed
			n[1] += p.Failed
			m[p.Task] = n
		}
		return m, nil
	}
	// Before the worker stops: written by a heartbeat, once the outcomes
	// are recorded; each check lets the next heartbeat run.
	eventually(t, "the heartbeat's throughput", func() bool {
		fireNext(t, clock, "core.(*Worker).heartbeat")
		m, err := totals()
		if err != nil {
			t.Fatal(err)
		}
		return m["ok"] == [2]int64{2, 0} && m["bad"] == [2]int64{0, 1} && b.job(t, later.ID).LockedBy == nil
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	m, err := totals()
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || m["ok"] != [2]int64{2, 0} || m["bad"] != [2]int64{0, 1} {
		t.Fatalf("throughput after stop = %v; want ok 2 completed, bad 1 failed, the snoozed job not at all, nothing counted twice", m)
	}
}
