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
//		fx.Provide(func(pool *pgxpool.Pool) core.Database { return pgxdriver.New(pool) }),
//		fx.Supply(fxmodule.Config{Worker: core.WorkerOptions{Schema: "jobs", Concurrency: 8}}),
//		fxmodule.Module,
//		fx.Provide(fxmodule.AsTask(newSendEmailTask)),
//		fx.Provide(fxmodule.AsPlugin(newTelemetry)),
//		fxmodule.Crontab("0 4 * * * nightly_report"),
//	)
//
// (Example_application runs this application.)
//
// Tasks, plugins, cron entries and extensions come from anywhere in the graph,
// through value groups: AsTask, AsPlugin and AsSchedule annotate
// constructors; Tasks, Plugins, Crontab and Extension supply values. They are
// added to those set in Config.Worker. Value groups are unordered, so
// plugins from the group run after Config.Worker.Plugins, sorted by name;
// put plugins whose relative order matters into one, or into Config.
// AsPlugin also provides the plugin as its own type, so the application
// reaches the very instance the worker runs (fx.Populate, or a constructor
// taking it).
//
// ClientModule provides only a *core.Utils, for processes that add jobs but
// run none; it uses Config.Worker's Schema and Logger and the plugins group.
// Use one of the two modules, not both.
//
// # The database
//
// The modules take a core.Database from the graph and import no driver, so
// an application links only the driver it uses. Provide one with a line of
// your own. Over a pool the application already has (it keeps owning and
// closing it):
//
//	fx.Provide(func(pool *pgxpool.Pool) core.Database { return pgxdriver.New(pool) })
//	fx.Provide(func(db *sql.DB) core.Database { return pqdriver.New(db, pqdriver.ListenDSN(dsn)) })
//	fx.Provide(func(db *bun.DB) core.Database { return bundriver.New(db) })
//
// (Example_existingPool runs a worker with each of them.)
//
// pqdriver.New needs the connection string to LISTEN with, since a *sql.DB
// does not tell; pqdriver.PollOnly() instead makes the worker poll alone,
// by choice. Or let the driver open its own pool, closed when the
// application stops (after the worker: fx runs stop hooks in reverse):
//
//	fx.Provide(func(lc fx.Lifecycle) (core.Database, error) {
//		db, err := pgxdriver.Open(context.Background(), url) // or pqdriver.Open, bundriver.Open
//		if err != nil {
//			return nil, err
//		}
//		lc.Append(fx.StopHook(db.Close))
//		return db, nil
//	})
package fxmodule
