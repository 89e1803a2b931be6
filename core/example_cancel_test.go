package core_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"sync"
	"time"

	"github.com/gworker/gworker/core"
)

// CancelJob cancels a job for good, even one a worker runs right now: the
// worker hears of it through a notification, cancels the handler's context
// with a *CancelledError as its cause, and records the job as failed for
// good with the reason, whatever the handler returns.
func ExampleUtils_CancelJob() {
	ctx := context.Background()
	db, utils, stop := exampleSetup(ctx, "cancel")
	defer stop()

	runCtx, shutdown := context.WithCancel(ctx)
	var up sync.Once
	ready, running := make(chan struct{}), make(chan struct{})
	worker, err := core.NewWorker(core.WorkerOptions{
		Database:     db,
		Schema:       "cancel",
		Logger:       slog.New(slog.DiscardHandler),
		PollInterval: time.Hour, // notifications alone bring it work
		Hooks: core.Hooks{OnEvent: func(ctx context.Context, e core.Event) {
			switch e := e.(type) {
			case core.JobsFetched:
				up.Do(func() { close(ready) }) // its first look found nothing
			case core.JobCancelled:
				fmt.Println("cancelled:", e.Reason)
				shutdown() // the example is over
			}
		}},
		Tasks: []core.Task{core.RawTask("render_video", func(ctx context.Context, job *core.Job) error {
			close(running)
			<-ctx.Done() // a long render, watching its context
			fmt.Println("handler stopped:", context.Cause(ctx))
			return ctx.Err()
		})},
	})
	if err != nil {
		log.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- worker.Run(runCtx) }()

	<-ready
	job, err := utils.AddRawJob(ctx, "render_video", map[string]string{"video": "intro.mp4"}, nil)
	if err != nil {
		log.Fatal(err)
	}
	<-running
	if _, err := utils.CancelJob(ctx, job.ID, "the customer withdrew the video"); err != nil {
		log.Fatal(err)
	}
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	job, err = utils.GetJob(ctx, job.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("attempts %d of %d, locked %v, last_error %q\n", job.Attempts, job.MaxAttempts, job.LockedAt != nil, *job.LastError)
	// Output:
	// handler stopped: gworker: job cancelled: Cancelled: the customer withdrew the video
	// cancelled: Cancelled: the customer withdrew the video
	// attempts 25 of 25, locked false, last_error "Cancelled: the customer withdrew the video"
}
