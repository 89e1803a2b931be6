package core_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"strings"

	"github.com/gworker/gworker/core"
)

// Mention is an item of the "send_mention_digest" batch task.
type Mention struct {
	By string `json:"by"`
}

func (Mention) TaskIdentifier() string { return "send_mention_digest" }

// A batch task's handler gets many items in one job and returns one result
// per item. Adding with the job key of a batch job that still waits appends
// the items to it, so mentions that arrive close together go out in one
// digest.
func ExampleNewBatchTask() {
	ctx := context.Background()
	db, utils, stop := exampleSetup(ctx, "batch")
	defer stop()
	spec := &core.JobSpec{JobKey: "mentions:ada"}
	for _, by := range []string{"grace", "linus", "barbara"} {
		if _, err := core.AddBatchJob(ctx, utils, []Mention{{By: by}}, spec); err != nil {
			log.Fatal(err)
		}
	}

	worker, err := core.NewWorker(core.WorkerOptions{
		Database: db,
		Schema:   "batch",
		Logger:   slog.New(slog.DiscardHandler),
		Tasks: []core.Task{core.NewBatchTask(func(ctx context.Context, job *core.Job, items []Mention) ([]error, error) {
			names := make([]string, len(items))
			for i, m := range items {
				names[i] = m.By
			}
			fmt.Printf("one digest, %d mentions: %s\n", len(items), strings.Join(names, ", "))
			return make([]error, len(items)), nil // a nil result per item: each succeeded
		})},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := worker.RunOnce(ctx); err != nil {
		log.Fatal(err)
	}
	// Output: one digest, 3 mentions: grace, linus, barbara
}
