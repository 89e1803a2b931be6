package core_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/cronspec"
	"github.com/gworker/gworker/driver/pgxdriver"
)

// Cron entries come from crontab text (graphile-worker's format), from Go,
// or both; Run schedules them. NewWorker checks them all first, and reports
// each mistake in the crontab with its line and column.
func ExampleWorkerOptions_crontab() {
	// pgxpool connects lazily; NewWorker does not touch the database.
	pool, err := pgxpool.New(context.Background(), "postgres://localhost/app")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	nightly, err := cronspec.DailyAt(2, 30, "refresh_stats").Fill(time.Hour).Entry()
	if err != nil {
		log.Fatal(err)
	}
	_, err = core.NewWorker(core.WorkerOptions{
		Database: pgxdriver.New(pool),
		Tasks: []core.Task{core.RawTask("refresh_stats", func(context.Context, *core.Job) error {
			return nil
		})},
		Crontab: `
# every 15 minutes on weekdays, at most 3 attempts
*/15 * * * 1-5 poll_feeds ?max=3
0 24 * * * send_report {to: 'ops'}
`,
		Schedules: []cronspec.Entry{nightly},
	})
	var perr *cronspec.ParseError
	if errors.As(err, &perr) {
		for _, le := range perr.Errors {
			fmt.Println(le)
		}
	}
	// Output: line 4, column 3: hour 24 is out of range 0-23
}
