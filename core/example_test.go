package core_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"time"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/internal/pgtest"
)

// Resize is the payload of the "resize_image" task.
type Resize struct {
	URL   string `json:"url"`
	Width int    `json:"width"`
}

func (Resize) TaskIdentifier() string { return "resize_image" }

// Add jobs with the client and run them with a worker.
func Example() {
	ctx := context.Background()
	db, utils, stop := exampleSetup(ctx, "example")
	defer stop()
	if _, err := utils.AddJob(ctx, Resize{URL: "https://example.com/a.png", Width: 640}, nil); err != nil {
		log.Fatal(err)
	}

	worker, err := core.NewWorker(core.WorkerOptions{
		Database: db,
		Schema:   "example",
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Tasks: []core.Task{
			core.NewTask(func(ctx context.Context, job *core.Job, r Resize) error {
				fmt.Printf("resizing %s to %dpx (attempt %d)\n", r.URL, r.Width, job.Attempts)
				return nil
			}),
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := worker.RunOnce(ctx); err != nil {
		log.Fatal(err)
	}
	// Output: resizing https://example.com/a.png to 640px (attempt 1)
}

// Job keys replace a waiting job instead of adding another: here a
// debounced "send digest" job keeps its first run time.
func ExampleUtils_AddRawJob_jobKey() {
	ctx := context.Background()
	_, utils, stop := exampleSetup(ctx, "keys")
	defer stop()
	first := time.Now().Add(time.Minute)
	spec := &core.JobSpec{JobKey: "digest:42", JobKeyMode: core.PreserveRunAt, RunAt: first}
	a, err := utils.AddRawJob(ctx, "send_digest", map[string]int{"user": 42}, spec)
	if err != nil {
		log.Fatal(err)
	}
	spec.RunAt = first.Add(time.Hour)
	b, err := utils.AddRawJob(ctx, "send_digest", map[string]int{"user": 42}, spec)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("same job:", a.ID == b.ID, "revision:", b.Revision, "run_at kept:", b.RunAt.Equal(a.RunAt))
	// Output: same job: true revision: 1 run_at kept: true
}

// BulkAddJobs loads many keyless jobs at once (with COPY on pgxdriver) and
// returns how many it added.
func ExampleUtils_BulkAddJobs() {
	ctx := context.Background()
	_, utils, stop := exampleSetup(ctx, "bulk")
	defer stop()
	jobs := make([]core.NewJob, 10000)
	for i := range jobs {
		jobs[i] = core.NewJob{Identifier: "import_row", Payload: map[string]int{"row": i}}
	}
	n, err := utils.BulkAddJobs(ctx, jobs)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("added", n)
	// Output: added 10000
}

// exampleSetup returns a driver and a client on a migrated schema of a
// database of the example's own (your application would connect to its
// database), and a function that closes and drops it all. The package's
// examples and tests share one throwaway server: starting one per example
// took longer than the examples themselves.
func exampleSetup(ctx context.Context, schema string) (*pgxdriver.Driver, *core.Utils, func()) {
	url, drop, err := pgtest.Database(ctx)
	if err != nil {
		log.Fatal(err)
	}
	db, err := pgxdriver.Open(ctx, url)
	if err != nil {
		log.Fatal(err)
	}
	utils, err := core.NewUtils(db, core.UtilsOptions{Schema: schema})
	if err != nil {
		log.Fatal(err)
	}
	if err := utils.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	return db, utils, func() { db.Close(); drop() }
}
