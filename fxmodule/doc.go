// Package fxmodule wires gworker into go.uber.org/fx applications.
//
// Module provides a *core.Worker and its *core.Utils from a core.Database
// the application provides, and runs the worker with the application's
// lifecycle: OnStart migrates the schema (unless Config.Worker.SkipMigrate)
// and starts Worker.Run in a goroutine; OnStop cancels it and waits for the
// graceful shutdown (running jobs get the grace period, the rest go back to
// the queue) within fx's stop timeout. If the worker stops on its own with
// an error, the application is shut down with exit code 1 (57 for a
// breaking migration, as graphile-worker exits).
//
//	fx.New(
//		fx.Provide(newPool),                   // *pgxpool.Pool
//		fx.Provide(fxmodule.PgxDatabase),      // core.Database from it
//		fx.Supply(fxmodule.Config{Worker: core.WorkerOptions{Schema: "jobs", Concurrency: 8}}),
//		fxmodule.Module,
//		fx.Provide(fxmodule.AsTask(newSendEmailTask)),
//		fx.Provide(fxmodule.AsPlugin(newTelemetry)),
//		fxmodule.Crontab("0 4 * * * nightly_report"),
//	)
//
// Tasks, plugins, cron entries and extensions come from anywhere in the graph,
// through value groups: AsTask, AsPlugin and AsSchedule annotate
// constructors; Tasks, Plugins, Crontab and Extension supply values. They are
// added to those set in Config.Worker. Value groups are unordered, so
// plugins from the group run after Config.Worker.Plugins, sorted by name;
// put plugins whose relative order matters into one, or into Config.
//
// ClientModule provides only a *core.Utils, for processes that add jobs but
// run none; it uses Config.Worker's Schema and Logger and the plugins group.
// Use one of the two modules, not both.
//
// PgxDatabase, SQLDatabase and BunDatabase turn a *pgxpool.Pool, a
// database/sql *sql.DB on lib/pq, or a *bun.DB into the core.Database the
// modules need; the application keeps owning (and closing) its pool.
package fxmodule
