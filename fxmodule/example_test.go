package fxmodule_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

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

// Telemetry is a plugin that the application also uses directly, for
// instance to serve its counters.
type Telemetry struct {
	mu   sync.Mutex
	done int
}

func NewTelemetry() *Telemetry { return &Telemetry{} }

func (t *Telemetry) Name() string { return "telemetry" }

func (t *Telemetry) Hooks() core.Hooks {
	return core.Hooks{OnEvent: func(_ context.Context, e core.Event) {
		if _, ok := e.(core.JobCompleted); ok {
			t.mu.Lock()
			t.done++
			t.mu.Unlock()
		}
	}}
}

// Completed is what the application serves, say on its metrics endpoint.
func (t *Telemetry) Completed() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.done
}

// A plugin provided with AsPlugin is in the graph by its own type too, and
// it is the same instance the worker runs: fx.Populate (or any
// constructor taking a *Telemetry) reaches the plugin the worker reports to.
func ExampleAsPlugin() {
	var (
		tel     *Telemetry
		plugins []core.Plugin // what Module's worker gets from the group
	)
	app := fx.New(
		fx.NopLogger,
		fx.Provide(fxmodule.AsPlugin(NewTelemetry)),
		fx.Populate(&tel),
		fx.Populate(fx.Annotate(&plugins, fx.ParamTags(`group:"`+fxmodule.PluginsGroup+`"`))),
	)
	if err := app.Err(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(plugins), plugins[0] == core.Plugin(tel), tel.Completed())

	// Providing the constructor a second time is a mistake fx reports,
	// *Telemetry being provided already, rather than a second plugin.
	err := fx.New(
		fx.NopLogger,
		fx.Provide(fxmodule.AsPlugin(NewTelemetry)),
		fx.Provide(fxmodule.AsPlugin(NewTelemetry)),
	).Err()
	fmt.Println(err != nil)
	// Output:
	// 1 true 0
	// true
}
