package interop_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/internal/testkit"
)

// Both wake-up tests poll once a minute, so a job that runs well within that
// was announced by NOTIFY: the worker is idle (its last fetch found nothing
// after its LISTEN was in place) when the other side adds the job. The
// bound is the one promised to users, a second from the add's commit to the
// handler's start; it is measured from the start of the add call, which
// can only make the measure longer. It has a wide margin (a pick-up takes
// milliseconds) and still proves NOTIFY, being sixty times shorter than
// the poll.
const (
	wakePoll  = time.Minute
	wakeBound = time.Second
)

// TestNodeAddWakesGworker: a job added by Node's addJob wakes an idle
// gworker worker through jobs:insert.
func TestNodeAddWakesGworker(t *testing.T) {
	t.Parallel()
	e := setup(t, time.Minute)
	schema := schemaName()
	e.goMigrate(t, schema)

	rec := newRecorder()
	idle := make(chan struct{})
	var once sync.Once
	var g *goWorker
	g = e.newGoWorker(t, schema, goWorkerConfig{tasks: map[string]string{"wake": ""}, pollInterval: wakePoll,
		onEvent: func(ev core.Event) {
			// Listened is recorded before Listen returns, so a fetch that
			// follows the LISTEN sees it (g.listening may close later).
			f, ok := ev.(core.JobsFetched)
			if !ok || len(f.Jobs) > 0 || !g.listens.Has(testkit.Listened) {
				return
			}
			once.Do(func() { close(idle) })
		}}, rec)
	g.start(t, e.ctx)
	select {
	case <-idle:
	case <-e.ctx.Done():
		t.Fatal("gworker's worker never went idle while listening")
	}

	added := e.startAgent(t, "add", map[string]any{"schema": schema,
		"steps": []addStep{add("wake", `{"from": "node"}`, addSpec{})}}, nil).expect(e.ctx, "added")
	ctx, cancel := context.WithTimeout(e.ctx, wakePoll/2)
	defer cancel()
	r := rec.waitFor(t, ctx, 1)[0]
	if latency := time.Duration(r.Start-added.BeganAt) * time.Microsecond; latency > wakeBound {
		t.Errorf("gworker started Node's job %s after the add began; want NOTIFY to wake it within %s", latency, wakeBound)
	} else {
		t.Logf("Node add -> gworker handler: %s", latency)
	}
	g.stop(t)
}

// TestGworkerAddWakesNode: a job added by gworker's AddJob wakes an idle
// Node worker through jobs:insert.
func TestGworkerAddWakesNode(t *testing.T) {
	t.Parallel()
	e := setup(t, time.Minute)
	schema := schemaName()
	e.goMigrate(t, schema)

	rec := newRecorder()
	a := e.startAgent(t, "worker", map[string]any{"schema": schema, "pollInterval": wakePoll.Milliseconds(), "reportIdle": true,
		"tasks": map[string]any{"wake": map[string]any{}}}, rec)
	// Node fetches at start and listens; in whichever order, once both
	// happened only a notification or the next poll finds a new job.
	a.expectAll(e.ctx, "listening", "idle")

	began := time.Now()
	if _, err := e.utils(t, schema).AddRawJob(e.ctx, "wake", map[string]string{"from": "go"}, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(e.ctx, wakePoll/2)
	defer cancel()
	r := rec.waitFor(t, ctx, 1)[0]
	if latency := time.UnixMicro(r.Start).Sub(began); latency > wakeBound {
		t.Errorf("Node started gworker's job %s after the add began; want NOTIFY to wake it within %s", latency, wakeBound)
	} else {
		t.Logf("gworker add -> Node handler: %s", latency)
	}
	a.finish(e.ctx)
}
