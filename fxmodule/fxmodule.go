package fxmodule

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime"
	"slices"

	"go.uber.org/fx"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/cronspec"
)

// The value groups the modules collect registrations from.
const (
	TasksGroup      = "gworker.tasks"
	PluginsGroup    = "gworker.plugins"
	SchedulesGroup  = "gworker.schedules"
	ExtensionsGroup = "gworker.extensions"
)

// Config configures the modules. Provide one to the graph (fx.Supply or a
// constructor); without one, the zero Config applies: core's defaults.
type Config struct {
	// Worker holds the worker's options. Database comes from the graph (a
	// field set here is ignored); Tasks, Plugins, Schedules and Extensions
	// from the value groups are added to those set here. A nil Logger is
	// the graph's *slog.Logger when it has one.
	Worker core.WorkerOptions
}

// ExitCodeBreakingMigration is the exit code the application shuts down
// with when another process applied a breaking migration, as
// graphile-worker exits.
const ExitCodeBreakingMigration = 57

// Module provides *core.Worker and *core.Utils (the worker's client) and
// runs the worker with the application's lifecycle.
var Module = fx.Module("gworker",
	fx.Provide(NewWorker, workerUtils),
	fx.Invoke(Run),
)

// ClientModule provides a *core.Utils and no worker.
var ClientModule = fx.Module("gworker.client",
	fx.Provide(NewUtils),
)

// WorkerParams is what NewWorker takes from the graph.
type WorkerParams struct {
	fx.In
	// Database is the application's: a driver over its pool, provided
	// with fx.Provide (see the package documentation).
	Database   core.Database
	Config     Config           `optional:"true"`
	Logger     *slog.Logger     `optional:"true"`
	Tasks      []core.Task      `group:"gworker.tasks"`
	Plugins    []core.Plugin    `group:"gworker.plugins"`
	Schedules  []cronspec.Entry `group:"gworker.schedules"`
	Extensions []core.Extension `group:"gworker.extensions"`
}

// NewWorker builds the worker from the graph. Module provides it; call it
// yourself to wire a worker differently. The worker's SkipMigrate is set:
// Run migrates in OnStart instead, so that a migration failure fails the
// application's start.
func NewWorker(p WorkerParams) (*core.Worker, error) {
	o := p.Config.Worker
	o.Database = p.Database
	if o.Logger == nil {
		o.Logger = p.Logger
	}
	o.Tasks = append(slices.Clone(o.Tasks), p.Tasks...)
	o.Plugins = append(slices.Clone(o.Plugins), sortPlugins(p.Plugins)...)
	schedules := slices.Clone(p.Schedules)
	slices.SortStableFunc(schedules, func(a, b cronspec.Entry) int { return cmp.Compare(a.Identifier, b.Identifier) })
	o.Schedules = append(slices.Clone(o.Schedules), schedules...)
	o.Extensions = append(slices.Clone(o.Extensions), p.Extensions...)
	o.SkipMigrate = true // Run migrates in OnStart
	return core.NewWorker(o)
}

// sortPlugins orders the group's plugins by name: value groups are
// unordered, and hook order should not change from run to run.
func sortPlugins(ps []core.Plugin) []core.Plugin {
	out := slices.Clone(ps)
	slices.SortStableFunc(out, func(a, b core.Plugin) int {
		if a == nil || b == nil {
			return 0
		}
		return cmp.Compare(a.Name(), b.Name())
	})
	return out
}

func workerUtils(w *core.Worker) *core.Utils { return w.Utils() }

// ClientParams is what NewUtils takes from the graph.
type ClientParams struct {
	fx.In
	Database core.Database
	Config   Config        `optional:"true"`
	Logger   *slog.Logger  `optional:"true"`
	Plugins  []core.Plugin `group:"gworker.plugins"`
}

// NewUtils builds a client from the graph; ClientModule provides it.
func NewUtils(p ClientParams) (*core.Utils, error) {
	o := p.Config.Worker
	log := o.Logger
	if log == nil {
		log = p.Logger
	}
	return core.NewUtils(p.Database, core.UtilsOptions{Schema: o.Schema, Logger: log,
		Plugins: append(slices.Clone(o.Plugins), sortPlugins(p.Plugins)...), Hooks: o.Hooks})
}

// RunParams is what Run takes from the graph.
type RunParams struct {
	fx.In
	Lifecycle  fx.Lifecycle
	Shutdowner fx.Shutdowner
	Worker     *core.Worker
	Config     Config       `optional:"true"`
	Logger     *slog.Logger `optional:"true"`
}

// Run ties the worker to the lifecycle; Module invokes it. OnStart
// migrates (unless Config.Worker.SkipMigrate) and starts Run in a
// goroutine; OnStop cancels Run and waits for it within the stop context.
func Run(p RunParams) {
	w := p.Worker
	log := p.Logger
	if log == nil {
		log = slog.Default()
	}
	var (
		cancel context.CancelFunc
		done   chan error
	)
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			if !p.Config.Worker.SkipMigrate {
				if err := w.Utils().Migrate(ctx); err != nil {
					return err
				}
			}
			runCtx, c := context.WithCancel(context.Background())
			cancel, done = c, make(chan error, 1)
			go func() {
				err := w.Run(runCtx)
				done <- err
				if err != nil && runCtx.Err() == nil {
					code := 1
					var bm *core.BreakingMigrationError
					if errors.As(err, &bm) {
						code = ExitCodeBreakingMigration
					}
					log.Error("gworker: worker stopped on its own; shutting the application down", slog.Any("error", err),
						slog.Int("exit_code", code))
					_ = p.Shutdowner.Shutdown(fx.ExitCode(code))
				}
			}()
			return nil
		},
		OnStop: func(ctx context.Context) error {
			if cancel == nil {
				return nil
			}
			cancel()
			select {
			case err := <-done:
				return err
			case <-ctx.Done():
				return fmt.Errorf("gworker: the worker did not finish its graceful shutdown in time: %w", ctx.Err())
			}
		},
	})
}

// AsTask annotates a constructor of a core.Task so that its result joins
// the tasks group: fx.Provide(fxmodule.AsTask(newSendEmail)).
func AsTask(constructor any) any {
	return fx.Annotate(constructor, fx.ResultTags(`group:"`+TasksGroup+`"`))
}

// Tasks supplies tasks to the tasks group.
func Tasks(tasks ...core.Task) fx.Option {
	opts := make([]fx.Option, len(tasks))
	for i, t := range tasks {
		opts[i] = fx.Supply(fx.Annotated{Group: TasksGroup, Target: t})
	}
	return fx.Options(opts...)
}

// AsPlugin annotates a constructor of a plugin (any type implementing
// core.Plugin) so that its result joins the plugins group and is also
// provided as its own type: fx.Provide(fxmodule.AsPlugin(newTelemetry)).
// The application can then fx.Populate or inject the *Telemetry it
// configured, and it is the instance the worker runs: fx calls the
// constructor once for both. Providing the same constructor twice fails
// the application ("already provided") instead of making two plugins.
//
// The constructor returns the plugin, optionally followed by an error. A
// constructor whose result type is core.Plugin itself joins only the group,
// so that several of them can coexist. fx's own messages (such as a type
// provided twice) name AsPlugin's wrapper rather than the constructor; the
// fx.Provide line they point at is the application's.
func AsPlugin(constructor any) any {
	group := fx.ResultTags(`group:"` + PluginsGroup + `"`)
	fn, t := reflect.ValueOf(constructor), reflect.TypeOf(constructor)
	if t == nil || t.Kind() != reflect.Func || !(t.NumOut() == 1 || t.NumOut() == 2 && t.Out(1) == errorType) ||
		t.Out(0) == pluginType || !t.Out(0).Implements(pluginType) {
		// Group only; fx reports a constructor it cannot use, or a result
		// that is no plugin, when the application starts.
		return fx.Annotate(constructor, fx.As(new(core.Plugin)), group)
	}
	// fx.As(fx.Self()) would put the plugin's own type into the group too
	// (result tags apply to every type an As provides), so the constructor
	// is wrapped into one returning the plugin twice: as itself, untagged,
	// and as core.Plugin, into the group. One call, one instance.
	name := "constructor"
	if f := runtime.FuncForPC(fn.Pointer()); f != nil {
		name = f.Name()
	}
	in := make([]reflect.Type, t.NumIn())
	for i := range in {
		in[i] = t.In(i)
	}
	out := []reflect.Type{t.Out(0), pluginType}
	if t.NumOut() == 2 {
		out = append(out, errorType)
	}
	wrapped := reflect.MakeFunc(reflect.FuncOf(in, out, t.IsVariadic()), func(args []reflect.Value) []reflect.Value {
		var res []reflect.Value
		if t.IsVariadic() {
			res = fn.CallSlice(args)
		} else {
			res = fn.Call(args)
		}
		p := reflect.New(pluginType).Elem()
		if len(res) == 2 && !res[1].IsNil() {
			// fx names the wrapper, not the constructor, so the error does.
			// fx discards the values of a constructor that failed.
			err := fmt.Errorf("gworker: fxmodule.AsPlugin(%s): %w", name, res[1].Interface().(error))
			return []reflect.Value{reflect.Zero(t.Out(0)), p, reflect.ValueOf(&err).Elem()}
		}
		p.Set(res[0])
		return append([]reflect.Value{res[0], p}, res[1:]...)
	})
	return fx.Annotate(wrapped.Interface(), fx.ResultTags(``, `group:"`+PluginsGroup+`"`))
}

var (
	pluginType = reflect.TypeFor[core.Plugin]()
	errorType  = reflect.TypeFor[error]()
)

// Plugins supplies plugins to the plugins group.
func Plugins(plugins ...core.Plugin) fx.Option {
	opts := make([]fx.Option, len(plugins))
	for i, p := range plugins {
		// Supplied as core.Plugin, not as the value's concrete type.
		opts[i] = fx.Provide(fx.Annotate(func() core.Plugin { return p }, fx.ResultTags(`group:"`+PluginsGroup+`"`)))
	}
	return fx.Options(opts...)
}

// AsSchedule annotates a constructor of a cronspec.Entry so that its
// result joins the schedules group.
func AsSchedule(constructor any) any {
	return fx.Annotate(constructor, fx.ResultTags(`group:"`+SchedulesGroup+`"`))
}

// Crontab parses a crontab (see package cronspec) and supplies its entries
// to the schedules group. A crontab that does not parse fails the
// application with the *cronspec.ParseError.
func Crontab(crontab string) fx.Option {
	entries, err := cronspec.Parse(crontab)
	if err != nil {
		return fx.Error(fmt.Errorf("gworker: fxmodule.Crontab: %w", err))
	}
	opts := make([]fx.Option, len(entries))
	for i, e := range entries {
		opts[i] = fx.Supply(fx.Annotated{Group: SchedulesGroup, Target: e})
	}
	return fx.Options(opts...)
}

// Extension makes the graph's value of type T a worker extension, which
// handlers read with core.LookupExtension[T] or core.ExtensionFromContext[T].
func Extension[T any]() fx.Option {
	return fx.Provide(fx.Annotate(func(v T) core.Extension { return core.WithExtension(v) },
		fx.ResultTags(`group:"`+ExtensionsGroup+`"`)))
}
