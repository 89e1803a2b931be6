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
//   - a job added while the workers are idle starts within a bound far
//     below their poll interval, woken by a notification;
//   - jobs of a named queue never run at the same time, and no job is lost
//     or runs twice;
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
