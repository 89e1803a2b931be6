package core_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"sync/atomic"

	"github.com/gworker/gworker/core"
)

// With a local queue one fetch locks a batch of jobs for the whole worker,
// and its slots take them from memory: here 4 slots run 20 jobs from a
// single fetch, where without one each fetch asks only for as many jobs as
// there are free slots. Jobs that wait in memory longer than TTL go back to
// the database untouched.
func ExampleLocalQueueOptions() {
	ctx := context.Background()
	db, utils, stop := exampleSetup(ctx, "local_queue")
	defer stop()
	jobs := make([]core.NewJob, 20)
	for i := range jobs {
		jobs[i] = core.NewJob{Identifier: "index_page", Payload: map[string]int{"page": i}}
	}
	if _, err := utils.AddJobs(ctx, jobs); err != nil {
		log.Fatal(err)
	}

	var fetches, ran atomic.Int64
	worker, err := core.NewWorker(core.WorkerOptions{
		Database:    db,
		Schema:      "local_queue",
		Logger:      slog.New(slog.DiscardHandler),
		Concurrency: 4,
		LocalQueue:  core.LocalQueueOptions{Size: 20},
		Hooks: core.Hooks{OnEvent: func(ctx context.Context, e core.Event) {
			if e, ok := e.(core.JobsFetched); ok && len(e.Jobs) > 0 {
				fetches.Add(1)
				fmt.Printf("fetch: asked for %d, got %d\n", e.Asked, len(e.Jobs))
			}
		}},
		Tasks: []core.Task{core.RawTask("index_page", func(ctx context.Context, job *core.Job) error {
			ran.Add(1)
			return nil
		})},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := worker.RunOnce(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("ran %d jobs from %d fetch(es)\n", ran.Load(), fetches.Load())
	// Output:
	// fetch: asked for 20, got 20
	// ran 20 jobs from 1 fetch(es)
}
