package core_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"time"

	"github.com/gworker/gworker/core"
)

// Charge is the payload of the "charge" task.
type Charge struct {
	Card string `json:"card"`
}

func (Charge) TaskIdentifier() string { return "charge" }

// A handler fails its job for good when no retry can help: the job keeps
// its row, with no attempts left and the handler's message as last_error.
// A payload that does not decode into the task's type fails for good the
// same way, without running the handler.
func ExampleFailPermanently() {
	ctx := context.Background()
	db, utils, stop := exampleSetup(ctx, "fail_permanently")
	defer stop()
	job, err := utils.AddJob(ctx, Charge{Card: "expired"}, nil)
	if err != nil {
		log.Fatal(err)
	}
	worker, err := core.NewWorker(core.WorkerOptions{
		Database: db,
		Schema:   "fail_permanently",
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Tasks: []core.Task{core.NewTask(func(ctx context.Context, job *core.Job, c Charge) error {
			if c.Card == "expired" {
				return core.FailPermanently(errors.New("card expired"))
			}
			return nil
		})},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := worker.RunOnce(ctx); err != nil {
		log.Fatal(err)
	}
	job, err = utils.GetJob(ctx, job.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("attempts %d of %d, locked %v, last_error %q\n", job.Attempts, job.MaxAttempts, job.LockedAt != nil, *job.LastError)
	// Output: attempts 25 of 25, locked false, last_error "card expired"
}

// A handler puts its job off without spending an attempt when it is not
// time yet: here an API's rate limit. The job runs again an hour from now
// (the database's clock), and its attempts stay as they were.
func ExampleRetryAfter() {
	ctx := context.Background()
	db, utils, stop := exampleSetup(ctx, "retry_after")
	defer stop()
	job, err := utils.AddRawJob(ctx, "sync_contacts", nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	worker, err := core.NewWorker(core.WorkerOptions{
		Database: db,
		Schema:   "retry_after",
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Tasks: []core.Task{core.RawTask("sync_contacts", func(ctx context.Context, job *core.Job) error {
			return core.RetryAfter(time.Hour, errors.New("rate limited until the next hour"))
		})},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := worker.RunOnce(ctx); err != nil {
		log.Fatal(err)
	}
	job, err = utils.GetJob(ctx, job.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("attempts %d, due in about %v, last_error %q\n", job.Attempts, time.Until(job.RunAt).Round(time.Hour), *job.LastError)
	// Output: attempts 0, due in about 1h0m0s, last_error "rate limited until the next hour"
}

// A batch task steers each item on its own: failed items are retried,
// items failed for good are dropped from the retry, snoozed ones wait.
func ExampleNewBatchTask_steering() {
	ctx := context.Background()
	db, utils, stop := exampleSetup(ctx, "batch_steering")
	defer stop()
	job, err := core.AddBatchJob(ctx, utils, []Charge{{"ok"}, {"declined"}, {"stolen"}}, nil)
	if err != nil {
		log.Fatal(err)
	}
	worker, err := core.NewWorker(core.WorkerOptions{
		Database: db,
		Schema:   "batch_steering",
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Tasks: []core.Task{core.NewBatchTask(func(ctx context.Context, job *core.Job, items []Charge) ([]error, error) {
			results := make([]error, len(items))
			for i, c := range items {
				switch c.Card {
				case "declined":
					results[i] = errors.New("declined; try again")
				case "stolen":
					results[i] = core.FailPermanently(errors.New("reported stolen"))
				}
			}
			return results, nil
		})},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := worker.RunOnce(ctx); err != nil {
		log.Fatal(err)
	}
	job, err = utils.GetJob(ctx, job.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("payload %s, attempts %d\n%s\n", job.Payload, job.Attempts, *job.LastError)
	// Output:
	// payload [{"card":"declined"}], attempts 1
	// Batch failures (2 items; they will be retried alone):
	// [1] declined; try again
	// [2] reported stolen (failed for good; not run again)
}
