package core_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/gworker/gworker/core"
)

// Cancelling Run's context (or, with HandleSignals, SIGINT or SIGTERM)
// shuts the worker down gracefully: it stops fetching, gives running jobs
// GracePeriod to finish, then cancels their contexts. A job that ends
// because of that goes back to the queue with its attempt not counted, to
// run again after InterruptedRetryDelay.
func ExampleWorker_Run_gracefulShutdown() {
	ctx := context.Background()
	db, utils, stop := exampleSetup(ctx, "shutdown")
	defer stop()
	for _, task := range []string{"send_receipt", "import_feed"} {
		if _, err := utils.AddRawJob(ctx, task, nil, nil); err != nil {
			log.Fatal(err)
		}
	}

	runCtx, shutdown := context.WithCancel(ctx)
	var started atomic.Int32
	stopping := make(chan struct{})
	worker, err := core.NewWorker(core.WorkerOptions{
		Database:    db,
		Schema:      "shutdown",
		Logger:      slog.New(slog.DiscardHandler),
		Concurrency: 2,
		GracePeriod: 200 * time.Millisecond,
		Hooks: core.Hooks{OnEvent: func(ctx context.Context, e core.Event) {
			switch e := e.(type) {
			case core.JobStarted:
				if started.Add(1) == 2 {
					shutdown() // both jobs run: time to go
				}
			case core.WorkerShutdown:
				close(stopping)
			case core.JobCompleted:
				fmt.Println("completed:", e.Job.TaskIdentifier)
			case core.JobInterrupted:
				fmt.Println("interrupted:", e.Job.TaskIdentifier)
			}
		}},
		Tasks: []core.Task{
			core.RawTask("send_receipt", func(ctx context.Context, job *core.Job) error {
				<-stopping // still busy when the shutdown begins, done within the grace period
				return nil
			}),
			core.RawTask("import_feed", func(ctx context.Context, job *core.Job) error {
				<-ctx.Done() // would run for long: stops when its context is cancelled
				return ctx.Err()
			}),
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := worker.Run(runCtx); err != nil {
		log.Fatal(err)
	}

	page, err := utils.ListJobs(ctx, core.ListJobsOptions{})
	if err != nil {
		log.Fatal(err)
	}
	for _, j := range page.Jobs {
		fmt.Printf("left: %s, attempts %d, locked %v, runs again in about %v\n",
			j.TaskIdentifier, j.Attempts, j.LockedAt != nil, time.Until(j.RunAt).Round(10*time.Second))
		fmt.Println("last_error:", *j.LastError)
	}
	// Output:
	// completed: send_receipt
	// interrupted: import_feed
	// left: import_feed, attempts 0, locked false, runs again in about 30s
	// last_error: gworker: job interrupted by worker shutdown and returned to the queue; this attempt does not count
}
