package fxmodule_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/cronspec"
	"github.com/gworker/gworker/driver/bundriver"
	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/driver/pqdriver"
	"github.com/gworker/gworker/fxmodule"
	"github.com/gworker/gworker/internal/pgtest"
	"github.com/gworker/gworker/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var quiet = slog.New(slog.DiscardHandler)

type Charge struct {
	Cents int `json:"cents"`
}

func (Charge) TaskIdentifier() string { return "charge" }

type Mail struct {
	To string `json:"to"`
}

func (Mail) TaskIdentifier() string { return "mail" }

// Greeter is application state the handlers reach as an extension.
type Greeter struct{ Prefix string }

// ran collects what the handlers did.
type ran struct {
	mu   sync.Mutex
	what []string
	done chan string
}

func (r *ran) add(s string) {
	r.mu.Lock()
	r.what = append(r.what, s)
	r.mu.Unlock()
	r.done <- s
}

// observer is a plugin recording event names per plugin instance.
type observer struct {
	name   string
	mu     sync.Mutex
	events []string
}

func (o *observer) Name() string { return o.name }
func (o *observer) Hooks() core.Hooks {
	return core.Hooks{OnEvent: func(_ context.Context, e core.Event) {
		o.mu.Lock()
		o.events = append(o.events, e.EventName())
		o.mu.Unlock()
	}}
}
func (o *observer) saw(name string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Contains(o.events, name)
}

// billing and mail are two separate fx modules of an application, each
// registering its own task and plugin.
func billing(r *ran, obs *observer) fx.Option {
	return fx.Module("billing",
		fx.Provide(fxmodule.AsTask(func(g *Greeter) core.Task {
			return core.NewTask(func(ctx context.Context, _ *core.Job, c Charge) error {
				ext, err := core.ExtensionFromContext[*Greeter](ctx)
				if err != nil {
					return err
				}
				r.add(ext.Prefix + "charged")
				return nil
			})
		})),
		fx.Provide(fxmodule.AsPlugin(func() *observer { return obs })),
		fx.Provide(fxmodule.AsSchedule(func() (cronspec.Entry, error) { return cronspec.DailyAt(4, 0, "charge").ID("nightly_charge").Entry() })),
	)
}

func mail(r *ran, obs *observer) fx.Option {
	return fx.Module("mail",
		fxmodule.Tasks(core.NewTask(func(_ context.Context, _ *core.Job, m Mail) error { r.add("mailed " + m.To); return nil })),
		fxmodule.Plugins(obs),
		fxmodule.Crontab("0 5 * * * mail ?id=morning_mail"),
	)
}

// pgxDatabase is how an application on pgx provides the module's database.
func pgxDatabase(pool *pgxpool.Pool) core.Database { return pgxdriver.New(pool) }

func base(pool *pgxpool.Pool, schema string, opts core.WorkerOptions) fx.Option {
	opts.Schema, opts.Logger = schema, quiet
	return fx.Options(
		fx.Supply(pool),
		fx.Provide(pgxDatabase),
		fx.Supply(fxmodule.Config{Worker: opts}),
		fx.Supply(&Greeter{Prefix: "ext:"}),
		fxmodule.Extension[*Greeter](),
		fx.NopLogger,
	)
}

func TestModuleRunsJobsFromTwoModulesAndStopsGracefully(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Pool(t), pgtest.Schema(t)
	r := &ran{done: make(chan string, 10)}
	billingObs, mailObs := &observer{name: "billing-audit"}, &observer{name: "mail-audit"}
	var utils *core.Utils
	var worker *core.Worker
	app := fxtest.New(t,
		base(pool, schema, core.WorkerOptions{Concurrency: 2}),
		fxmodule.Module,
		billing(r, billingObs),
		mail(r, mailObs),
		fx.Populate(&utils, &worker),
	)
	app.RequireStart() // migrates the schema and starts the worker

	ctx := context.Background()
	if _, err := utils.AddJob(ctx, Charge{Cents: 500}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := utils.AddJob(ctx, Mail{To: "ada"}, nil); err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 2 {
		select {
		case s := <-r.done:
			got = append(got, s)
		case <-time.After(30 * time.Second):
			t.Fatalf("jobs did not run; ran %v", got)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"ext:charged", "mailed ada"}) {
		t.Fatalf("ran %v", got)
	}
	// Both modules' cron entries reached the worker: its runner registered them.
	testkit.Eventually(t, "both cron entries to be known", func() bool { return known(t, pool, schema) == "morning_mail,nightly_charge" })
	app.RequireStop()

	// Both plugins saw the whole life of the worker, stop included.
	for _, o := range []*observer{billingObs, mailObs} {
		for _, e := range []string{"worker:start", "job:success", "worker:shutdown", "worker:stop"} {
			if !o.saw(e) {
				t.Errorf("plugin %s did not see %s", o.name, e)
			}
		}
	}
	if worker.ID() == "" {
		t.Error("no worker was populated")
	}
}

// known lists the identifiers in _private_known_crontabs, sorted.
func known(t *testing.T, pool *pgxpool.Pool, schema string) string {
	t.Helper()
	rows, err := pool.Query(context.Background(), "select identifier from "+pgx.Identifier{schema, "_private_known_crontabs"}.Sanitize()+" order by 1")
	if err != nil {
		return err.Error()
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err.Error()
	}
	return strings.Join(ids, ",")
}

func TestStopInterruptsRunningJobsGracefully(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Pool(t), pgtest.Schema(t)
	started := make(chan int64, 1)
	var utils *core.Utils
	app := fxtest.New(t,
		base(pool, schema, core.WorkerOptions{GracePeriod: 10 * time.Millisecond}),
		fxmodule.Module,
		fxmodule.Tasks(core.RawTask("slow", func(ctx context.Context, j *core.Job) error {
			started <- j.ID
			<-ctx.Done()
			return context.Cause(ctx)
		})),
		fx.Populate(&utils),
	)
	app.RequireStart()
	job, err := utils.AddRawJob(context.Background(), "slow", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	<-started
	app.RequireStop() // cancels Run and waits for the graceful shutdown

	var attempts int
	var lastError *string
	var lockedBy *string
	err = pool.QueryRow(context.Background(), "select attempts, last_error, locked_by from "+
		pgx.Identifier{schema, "_private_jobs"}.Sanitize()+" where id = $1", job.ID).Scan(&attempts, &lastError, &lockedBy)
	if err != nil {
		t.Fatal(err)
	}
	if attempts != 0 || lockedBy != nil || lastError == nil || !strings.Contains(*lastError, "interrupted") {
		t.Fatalf("job after stop: attempts %d, locked_by %v, last_error %v; want it returned to the queue", attempts, lockedBy, lastError)
	}
}

func TestClientModuleAddsWithPluginsAndRunsNothing(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Pool(t), pgtest.Schema(t)
	obs := &observer{name: "audit"}
	var utils *core.Utils
	app := fxtest.New(t,
		base(pool, schema, core.WorkerOptions{}),
		fxmodule.ClientModule,
		fxmodule.Plugins(obs),
		fx.Populate(&utils),
	)
	app.RequireStart()
	defer app.RequireStop()
	if utils.Schema() != schema {
		t.Fatalf("client schema %q, want %q", utils.Schema(), schema)
	}
	if err := utils.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := utils.AddRawJob(context.Background(), "anything", nil, nil); err != nil {
		t.Fatal(err)
	}
	if !obs.saw("job:added") {
		t.Error("the group's plugin did not see the add")
	}
}

func TestValidateApp(t *testing.T) {
	t.Parallel()
	r := &ran{done: make(chan string, 1)}
	ok := fx.ValidateApp(fx.NopLogger,
		fx.Provide(func() *pgxpool.Pool { return nil }),
		fx.Provide(pgxDatabase),
		fx.Supply(&Greeter{}),
		fxmodule.Extension[*Greeter](),
		fxmodule.Module,
		billing(r, &observer{name: "a"}),
		mail(r, &observer{name: "b"}),
	)
	if ok != nil {
		t.Fatalf("ValidateApp: %v", ok)
	}
	// Without a database the graph is incomplete, and fx says what is missing.
	err := fx.ValidateApp(fx.NopLogger, fxmodule.Module, mail(r, &observer{name: "b"}))
	if err == nil || !strings.Contains(err.Error(), "core.Database") {
		t.Fatalf("ValidateApp without a database: %v", err)
	}
	// A crontab that does not parse fails the application.
	err = fx.ValidateApp(fx.NopLogger, fx.Provide(func() *pgxpool.Pool { return nil }), fx.Provide(pgxDatabase),
		fxmodule.Module, fxmodule.Crontab("* * * * nonsense"))
	if err == nil || !strings.Contains(err.Error(), "fxmodule.Crontab") {
		t.Fatalf("ValidateApp with a bad crontab: %v", err)
	}
}

func TestStartFailsWhenTheWorkerCannotBeBuilt(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Pool(t), pgtest.Schema(t)
	// No task anywhere: NewWorker's validation error fails the start.
	app := fx.New(base(pool, schema, core.WorkerOptions{}), fxmodule.Module)
	err := app.Err()
	if err == nil || !strings.Contains(err.Error(), "WorkerOptions.Tasks") {
		t.Fatalf("app error %v, want the worker's validation error", err)
	}
}

// The module runs on whichever driver the application provides, opened
// with the same line for each, and the driver's pool closes after the
// worker stopped. Each driver listens, so a job wakes the worker at once
// although it polls only once an hour.
func TestModuleRunsOnEveryDriver(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		open func(ctx context.Context, url string) (core.Database, func() error, error)
	}{
		{"pgxdriver", opener(pgxdriver.Open)},
		{"pqdriver", opener(pqdriver.Open)},
		{"bundriver", opener(bundriver.Open)},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			url, schema := pgtest.URL(t), pgtest.Schema(t)
			done := make(chan int64, 1)
			var utils *core.Utils
			app := fxtest.New(t,
				fx.NopLogger,
				fx.Provide(func(lc fx.Lifecycle) (core.Database, error) {
					db, closeDB, err := c.open(context.Background(), url)
					if err != nil {
						return nil, err
					}
					lc.Append(fx.StopHook(closeDB))
					return db, nil
				}),
				fx.Supply(fxmodule.Config{Worker: core.WorkerOptions{Schema: schema, Logger: quiet, PollInterval: time.Hour}}),
				fxmodule.Module,
				fxmodule.Tasks(core.RawTask("ping", func(_ context.Context, j *core.Job) error { done <- j.ID; return nil })),
				fx.Populate(&utils),
			)
			app.RequireStart()
			job, err := utils.AddRawJob(context.Background(), "ping", nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			select {
			case id := <-done:
				if id != job.ID {
					t.Errorf("ran job %d, want %d", id, job.ID)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the job did not run: the worker did not wake up on NOTIFY")
			}
			app.RequireStop()
		})
	}
}

// opener adapts a driver's Open to the table above: the driver as a
// core.Database, and its Close.
func opener[D interface {
	core.Database
	Close() error
}, O any](open func(context.Context, string, ...O) (D, error)) func(context.Context, string) (core.Database, func() error, error) {
	return func(ctx context.Context, url string) (core.Database, func() error, error) {
		d, err := open(ctx, url)
		if err != nil {
			return nil, nil, err
		}
		return d, d.Close, nil
	}
}

// An application that uses fxmodule links only the driver it chose:
// fxmodule itself depends on no driver.
func TestModuleImportsNoDriver(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.Contains(pkg, "/driver/") || strings.Contains(pkg, "jackc/pgx") ||
			strings.Contains(pkg, "lib/pq") || strings.Contains(pkg, "uptrace/bun") {
			t.Errorf("fxmodule depends on %s", pkg)
		}
	}
}

// telemetry is a plugin the application also uses itself, by its own type.
type telemetry struct {
	prefix string
}

func (t *telemetry) Name() string      { return "telemetry" }
func (t *telemetry) Hooks() core.Hooks { return core.Hooks{} }
func (t *telemetry) Counter() string   { return t.prefix + "jobs" }

// pluginsIn fills ps with the plugins group, as NewWorker receives it.
func pluginsIn(ps *[]core.Plugin) fx.Option {
	return fx.Populate(fx.Annotate(ps, fx.ParamTags(`group:"gworker.plugins"`)))
}

func TestAsPluginProvidesThePluginAsItselfToo(t *testing.T) {
	t.Parallel()
	calls := 0
	newTelemetry := func(g *Greeter) (*telemetry, error) {
		calls++
		return &telemetry{prefix: g.Prefix}, nil
	}
	var (
		tel     *telemetry
		plugins []core.Plugin
	)
	app := fxtest.New(t, fx.NopLogger,
		fx.Supply(&Greeter{Prefix: "app."}),
		fx.Provide(fxmodule.AsPlugin(newTelemetry)),
		fx.Populate(&tel),
		pluginsIn(&plugins),
	)
	app.RequireStart()
	defer app.RequireStop()
	if tel == nil || tel.Counter() != "app.jobs" {
		t.Fatalf("populated %+v, want the constructor's telemetry", tel)
	}
	if len(plugins) != 1 || plugins[0] != core.Plugin(tel) {
		t.Fatalf("plugins group %v, want exactly the populated %p", plugins, tel)
	}
	if calls != 1 {
		t.Fatalf("constructor called %d times, want once", calls)
	}
}

func TestAsPluginTwiceFailsInsteadOfMakingTwoPlugins(t *testing.T) {
	t.Parallel()
	newTelemetry := func() *telemetry { return &telemetry{} }
	err := fx.New(fx.NopLogger,
		fx.Provide(fxmodule.AsPlugin(newTelemetry)),
		fx.Provide(fxmodule.AsPlugin(newTelemetry)),
	).Err()
	if err == nil || !strings.Contains(err.Error(), "already provided") {
		t.Fatalf("app error %v, want *telemetry already provided", err)
	}
}

func TestAsPluginConstructorError(t *testing.T) {
	t.Parallel()
	var tel *telemetry
	app := fx.New(fx.NopLogger,
		fx.Provide(fxmodule.AsPlugin(func() (*telemetry, error) { return nil, errors.New("no exporter configured") })),
		fx.Populate(&tel),
	)
	// The error names the constructor, which fx cannot: it sees AsPlugin's wrapper.
	err := app.Err()
	if err == nil || !strings.Contains(err.Error(), "no exporter configured") ||
		!strings.Contains(err.Error(), "TestAsPluginConstructorError") {
		t.Fatalf("app error %v, want the constructor's, naming it", err)
	}
}

// Constructors returning core.Plugin and variadic ones join the group too;
// several core.Plugin constructors do not clash over the interface type.
func TestAsPluginOtherConstructors(t *testing.T) {
	t.Parallel()
	named := func(name string) func() core.Plugin {
		return func() core.Plugin { return core.NewPlugin(name, core.Hooks{}) }
	}
	var plugins []core.Plugin
	app := fxtest.New(t, fx.NopLogger,
		fx.Provide(fxmodule.AsPlugin(named("a"))),
		fx.Provide(fxmodule.AsPlugin(named("b"))),
		fx.Provide(fxmodule.AsPlugin(func(opts ...string) *observer { return &observer{name: "c"} })),
		pluginsIn(&plugins),
	)
	app.RequireStart()
	defer app.RequireStop()
	var names []string
	for _, p := range plugins {
		names = append(names, p.Name())
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"a", "b", "c"}) {
		t.Fatalf("plugins group %v", names)
	}
}
