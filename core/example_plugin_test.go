package core_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/gworker/gworker/core"
)

// outcomes is a plugin with state of its own: it counts each task's
// outcomes.
type outcomes struct {
	mu     sync.Mutex
	counts map[string]int
}

func (o *outcomes) Name() string { return "outcomes" }

func (o *outcomes) Hooks() core.Hooks {
	return core.Hooks{OnEvent: func(ctx context.Context, e core.Event) {
		o.mu.Lock()
		defer o.mu.Unlock()
		switch e := e.(type) {
		case core.JobCompleted:
			o.counts[e.Job.TaskIdentifier+" completed"]++
		case core.JobPermanentlyFailed:
			o.counts[e.Job.TaskIdentifier+" failed ("+e.Message+")"]++
		}
	}}
}

// A plugin is a named set of hooks: a type with Name and Hooks methods when
// it keeps state, or NewPlugin's result when it does not. Here one counts
// outcomes and another gives every job a time limit. gworker's plugin
// directory has ready-made logging and OpenTelemetry plugins.
func ExamplePlugin() {
	ctx := context.Background()
	db, utils, stop := exampleSetup(ctx, "plugin")
	defer stop()
	for _, task := range []string{"send_email", "send_email", "render_pdf"} {
		if _, err := utils.AddRawJob(ctx, task, nil, &core.JobSpec{MaxAttempts: 1}); err != nil {
			log.Fatal(err)
		}
	}

	counter := &outcomes{counts: map[string]int{}}
	timeLimit := core.NewPlugin("time_limit", core.Hooks{
		AroundJobRun: func(ctx context.Context, job *core.Job, run func(context.Context) error) error {
			ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			return run(ctx)
		},
	})
	worker, err := core.NewWorker(core.WorkerOptions{
		Database: db,
		Schema:   "plugin",
		Logger:   slog.New(slog.DiscardHandler),
		Plugins:  []core.Plugin{counter, timeLimit},
		Tasks: []core.Task{
			core.RawTask("send_email", func(ctx context.Context, job *core.Job) error { return nil }),
			core.RawTask("render_pdf", func(ctx context.Context, job *core.Job) error {
				<-ctx.Done() // takes longer than the limit
				return ctx.Err()
			}),
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := worker.RunOnce(ctx); err != nil {
		log.Fatal(err)
	}
	for _, k := range slices.Sorted(maps.Keys(counter.counts)) {
		fmt.Printf("%s: %d\n", k, counter.counts[k])
	}
	// Output:
	// render_pdf failed (context deadline exceeded): 1
	// send_email completed: 2
}
