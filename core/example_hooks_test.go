package core_test

import (
	"context"
	"encoding/json"
	"log"
	"log/slog"
	"sync/atomic"

	"github.com/gworker/gworker/core"
)

// ExampleMailer is the application's mail service, given to handlers as an
// extension.
type ExampleMailer interface{ Send(to, body string) error }

// Hooks observe and steer a worker: count outcomes, hold jobs back during
// maintenance, stamp every job added with the tenant, and hand handlers the
// application's services through extensions.
func ExampleHooks() {
	var db core.Database     // e.g. pgxdriver.New(pool)
	var mailer ExampleMailer // the application's
	var maintenance atomic.Bool
	var completed, failed atomic.Int64

	worker, err := core.NewWorker(core.WorkerOptions{
		Database: db,
		Hooks: core.Hooks{
			OnEvent: func(ctx context.Context, e core.Event) {
				switch e := e.(type) {
				case core.JobCompleted:
					completed.Add(1)
				case core.JobFailed:
					failed.Add(1)
					slog.WarnContext(ctx, "job failed", "task", e.Job.TaskIdentifier, "will_retry", e.WillRetry)
				}
			},
			// During maintenance jobs go back to the queue untouched.
			BeforeJobRun: func(ctx context.Context, job *core.Job) core.Decision {
				if maintenance.Load() {
					return core.Skip()
				}
				return core.Continue()
			},
			// Jobs added from handlers (and by cron) carry the tenant.
			BeforeSchedule: func(ctx context.Context, job *core.ScheduledJob) core.Decision {
				var p map[string]any
				if json.Unmarshal(job.Payload, &p) != nil || p == nil {
					return core.Continue() // not an object: leave it
				}
				p["tenant"] = "acme"
				job.Payload, _ = json.Marshal(p)
				return core.Continue()
			},
		},
		Extensions: []core.Extension{core.WithExtension[ExampleMailer](mailer)},
		Tasks: []core.Task{core.RawTask("welcome", func(ctx context.Context, job *core.Job) error {
			m, err := core.ExtensionFromContext[ExampleMailer](ctx)
			if err != nil {
				return err // names the missing type
			}
			return m.Send("ada@example.com", "welcome")
		})},
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = worker
}
