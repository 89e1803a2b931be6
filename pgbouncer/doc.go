// Package pgbouncer proves that gworker works behind PgBouncer in
// transaction pooling mode, the way users at scale deploy PostgreSQL. It
// has no API: its tests start a throwaway PostgreSQL (internal/pgtest) and
// a pgbouncer process in front of it, and run gworker through it with each
// driver (pgxdriver from Open and over an application's own pool with
// pgx's defaults, pqdriver, bundriver):
//
//   - the migrations, adding jobs with the Go client and with SQL
//     add_job, and two workers fetching, completing and failing jobs, all
//     through PgBouncer, while the workers LISTEN on a direct connection
//     to PostgreSQL (each driver's ListenDSN option);
//   - a job added while the workers are idle (every fetch they started
//     has returned, and nothing but their listen sessions can make them
//     fetch again before the poll, an hour away) is taken by a fetch that
//     answered the jobs:insert notification on the direct connection;
//   - while the first job of a named queue runs, every worker fetches
//     with the second one there to be taken, and none takes it; the queue
//     is locked by the first job's worker, and the second job starts only
//     after the first ended; no job is lost or runs twice;
//   - a worker pointed at PgBouncer without a direct connection for LISTEN
//     says so, naming the option that fixes it, instead of waiting for
//     notifications that can never arrive;
//   - through session pooling, which keeps a LISTEN, every driver listens
//     without a direct connection, and the check the drivers rely on (the
//     process id a pooler announces is not the server's) holds for
//     PgBouncer in both modes.
//
// The tests need the pgbouncer binary (Debian's package: PgBouncer 1.18,
// which has no support for named prepared statements in transaction
// pooling mode). `make test` installs it when missing; without it the tests
// fail, saying what to install. $GWORKER_PGBOUNCER names another binary.
package pgbouncer
