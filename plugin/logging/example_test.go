package logging_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/internal/pgtest"
	"github.com/gworker/gworker/plugin/logging"
)

type Welcome struct {
	Email string `json:"email"`
}

func (Welcome) TaskIdentifier() string { return "send_welcome" }

// Log a worker's events as structured records. Here they go to stdout as
// text, without the attributes that change from run to run.
func ExampleNew() {
	ctx := context.Background()
	dbURL, drop, err := pgtest.Database(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer drop()
	db, err := pgxdriver.Open(ctx, dbURL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()

	volatile := map[string]bool{slog.TimeKey: true, "worker": true, "job_id": true, "duration": true}
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if volatile[a.Key] {
				return slog.Attr{}
			}
			return a
		},
	}))

	worker, err := core.NewWorker(core.WorkerOptions{
		Database:    db,
		Schema:      "logging_example",
		Concurrency: 1,
		Logger:      slog.New(slog.DiscardHandler), // the plugin logs instead
		Plugins:     []core.Plugin{logging.New(logging.Options{Logger: logger})},
		Tasks: []core.Task{core.NewTask(func(ctx context.Context, job *core.Job, w Welcome) error {
			return nil
		})},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := worker.Utils().Migrate(ctx); err != nil {
		fmt.Println(err)
		return
	}
	if _, err := worker.Utils().AddJob(ctx, Welcome{Email: "ada@example.com"}, nil); err != nil {
		fmt.Println(err)
		return
	}
	if err := worker.RunOnce(ctx); err != nil {
		fmt.Println(err)
	}
	// Output:
	// level=INFO msg="gworker: worker started" event=worker:start schema=logging_example concurrency=1 once=true tasks=[send_welcome]
	// level=INFO msg="gworker: job started" event=job:start task=send_welcome attempts=1 max_attempts=25
	// level=INFO msg="gworker: job completed" event=job:success task=send_welcome attempts=1 max_attempts=25
	// level=INFO msg="gworker: worker shutting down" event=worker:shutdown reason=drained running=0 buffered=0
	// level=INFO msg="gworker: worker stopped" event=worker:stop schema=logging_example
}
