package fxmodule_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"
	"go.uber.org/fx"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/bundriver"
	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/driver/pqdriver"
	"github.com/gworker/gworker/fxmodule"
	"github.com/gworker/gworker/internal/pgtest"
	"github.com/gworker/gworker/plugin/logging"
)

// mailing is a feature module of the application: it registers its task
// from its own corner of the graph.
var mailing = fx.Module("mailing", fx.Provide(fxmodule.AsTask(newSendEmailTask)))

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

	out := make(sent, 1)
	var utils *core.Utils
	app := fx.New(
		fx.NopLogger,
		fx.Supply(out),
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
		mailing,
		fx.Provide(fxmodule.AsPlugin(func() core.Plugin {
			return logging.New(logging.Options{Logger: slog.New(slog.DiscardHandler)})
		})),
		fx.Populate(&utils),
	)
	if err := app.Start(ctx); err != nil { // migrates, then runs the worker
		fmt.Println(err)
		return
	}
	if _, err := utils.AddJob(ctx, SendEmail{To: "grace@example.com"}, nil); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(<-out)
	if err := app.Stop(ctx); err != nil { // graceful shutdown of the worker
		fmt.Println(err)
		return
	}
	fmt.Println("stopped")
	// Output:
	// mailed grace@example.com
	// stopped
}

// Telemetry is a plugin that the application also uses directly, for
// instance to serve its counters.
type Telemetry struct {
	mu   sync.Mutex
	done int
}

func newTelemetry() *Telemetry { return &Telemetry{} }

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
		fx.Provide(fxmodule.AsPlugin(newTelemetry)),
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
		fx.Provide(fxmodule.AsPlugin(newTelemetry)),
		fx.Provide(fxmodule.AsPlugin(newTelemetry)),
	).Err()
	fmt.Println(err != nil)
	// Output:
	// 1 true 0
	// true
}

// DatabaseURL is the application's configuration of its database.
type DatabaseURL string

// newPool opens the application's own pool, which the application closes
// when it stops (after the worker: fx runs stop hooks in reverse).
func newPool(lc fx.Lifecycle, url DatabaseURL) (*pgxpool.Pool, error) {
	pool, err := pgxpool.New(context.Background(), string(url))
	if err != nil {
		return nil, err
	}
	lc.Append(fx.StopHook(pool.Close))
	return pool, nil
}

type SendEmail struct {
	To string `json:"to"`
}

func (SendEmail) TaskIdentifier() string { return "send_email" }

// sent receives what the tasks did, for the examples to print.
type sent chan string

func newSendEmailTask(out sent) core.Task {
	return core.NewTask(func(_ context.Context, _ *core.Job, e SendEmail) error {
		out <- "mailed " + e.To
		return nil
	})
}

// The application of the package documentation: the worker's database is
// pgxdriver over the application's own pool, and tasks, plugins and cron
// entries come from the graph.
func Example_application() {
	ctx := context.Background()
	url, drop, err := pgtest.Database(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer drop()

	out := make(sent, 1)
	var utils *core.Utils
	app := fx.New(
		fx.NopLogger,
		fx.Supply(DatabaseURL(url), out, slog.New(slog.DiscardHandler)),
		fx.Provide(newPool), // *pgxpool.Pool
		fx.Provide(func(pool *pgxpool.Pool) core.Database { return pgxdriver.New(pool) }),
		fx.Supply(fxmodule.Config{Worker: core.WorkerOptions{Schema: "jobs", Concurrency: 8}}),
		fxmodule.Module,
		fx.Provide(fxmodule.AsTask(newSendEmailTask)),
		fx.Provide(fxmodule.AsPlugin(newTelemetry)),
		fxmodule.Tasks(core.RawTask("nightly_report", func(context.Context, *core.Job) error { return nil })),
		fxmodule.Crontab("0 4 * * * nightly_report"),
		fx.Populate(&utils),
	)
	if err := app.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	if _, err := utils.AddJob(ctx, SendEmail{To: "ada@example.com"}, nil); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(<-out)
	if err := app.Stop(ctx); err != nil {
		fmt.Println(err)
		return
	}
	// Output:
	// mailed ada@example.com
}

// The worker's database over a pool the application already has, one line
// per driver; the pool stays the application's to close.
func Example_existingPool() {
	ctx := context.Background()
	dsn, drop, err := pgtest.Database(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer drop()

	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close()
	sqlDB, err := sql.Open("postgres", dsn) // lib/pq, which pqdriver registers
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sqlDB.Close()
	bunDB := bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn))), pgdialect.New())
	defer bunDB.Close()

	for _, c := range []struct {
		name     string
		database fx.Option
	}{
		{"pgxdriver", fx.Provide(func(pool *pgxpool.Pool) core.Database { return pgxdriver.New(pool) })},
		{"pqdriver", fx.Provide(func(db *sql.DB) core.Database { return pqdriver.New(db, pqdriver.ListenDSN(dsn)) })},
		{"bundriver", fx.Provide(func(db *bun.DB) core.Database { return bundriver.New(db) })},
	} {
		out := make(sent, 1)
		var utils *core.Utils
		app := fx.New(
			fx.NopLogger,
			fx.Supply(pool, sqlDB, bunDB, out),
			c.database,
			fx.Supply(fxmodule.Config{Worker: core.WorkerOptions{Schema: "fx_pools", Logger: slog.New(slog.DiscardHandler)}}),
			fxmodule.Module,
			fx.Provide(fxmodule.AsTask(newSendEmailTask)),
			fx.Populate(&utils),
		)
		if err := app.Start(ctx); err != nil {
			fmt.Println(err)
			return
		}
		if _, err := utils.AddJob(ctx, SendEmail{To: c.name + "@example.com"}, nil); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(<-out)
		if err := app.Stop(ctx); err != nil {
			fmt.Println(err)
			return
		}
	}
	// Output:
	// mailed pgxdriver@example.com
	// mailed pqdriver@example.com
	// mailed bundriver@example.com
}
