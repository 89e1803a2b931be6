package fxmodule_test

import (
	"context"
	"fmt"
	"log/slog"

	"go.uber.org/fx"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/fxmodule"
	"github.com/gworker/gworker/internal/pgtest"
	"github.com/gworker/gworker/plugin/logging"
)

type SendReport struct {
	Day string `json:"day"`
}

func (SendReport) TaskIdentifier() string { return "send_report" }

// reports is a feature module of the application: it registers its task
// from its own corner of the graph.
func reports(done chan<- string) fx.Option {
	return fx.Module("reports",
		fx.Provide(fxmodule.AsTask(func() core.Task {
			return core.NewTask(func(ctx context.Context, job *core.Job, r SendReport) error {
				done <- "sent the report of " + r.Day
				return nil
			})
		})),
	)
}

// An fx application with a worker: the application provides the database
// (its driver, here pgx) and the configuration, feature modules provide tasks and plugins, and the
// worker starts and stops with the application.
func Example() {
	ctx := context.Background()
	dbURL, drop, err := pgtest.Database(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer drop()

	done := make(chan string, 1)
	var utils *core.Utils
	app := fx.New(
		fx.NopLogger,
		// The application chooses the driver; fxmodule imports none.
		fx.Provide(func(lc fx.Lifecycle) (core.Database, error) {
			db, err := pgxdriver.Open(ctx, dbURL) // or pqdriver.Open, bundriver.Open
			if err != nil {
				return nil, err
			}
			lc.Append(fx.StopHook(db.Close)) // after the worker's: hooks stop in reverse
			return db, nil
		}),
		fx.Supply(fxmodule.Config{Worker: core.WorkerOptions{
			Schema: "fx_example",
			Logger: slog.New(slog.DiscardHandler),
		}}),
		fxmodule.Module,
		reports(done),
		fx.Provide(fxmodule.AsPlugin(func() core.Plugin {
			return logging.New(logging.Options{Logger: slog.New(slog.DiscardHandler)})
		})),
		fx.Populate(&utils),
	)
	if err := app.Start(ctx); err != nil { // migrates, then runs the worker
		fmt.Println(err)
		return
	}
	if _, err := utils.AddJob(ctx, SendReport{Day: "2024-01-02"}, nil); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(<-done)
	if err := app.Stop(ctx); err != nil { // graceful shutdown of the worker
		fmt.Println(err)
		return
	}
	fmt.Println("stopped")
	// Output:
	// sent the report of 2024-01-02
	// stopped
}
