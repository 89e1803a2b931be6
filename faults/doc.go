// Package faults is gworker's fault suite. It has no API: its tests start
// real worker processes (the library's Worker in a child process, and the
// gworker run command with executable tasks) against a PostgreSQL cluster
// of their own, break that cluster in the ways production databases break,
// and check what the workers did.
//
// Each scenario records every handler run in a file outside the database
// (a line appended per run, so the record survives the outage it
// describes) and checks:
//
//   - every job added ran to success at least once (nothing lost);
//   - the jobs table empties within a bound once the fault is over (no job
//     or named queue is left locked by a live worker);
//   - no job ran twice, unless one of two mechanisms explains it, and the
//     second run counts the same attempt as the first: a run of a worker
//     SIGKILLed before its outcome was known to be committed, whose job
//     the sweep of dead workers returned; or a fetch committed with
//     synchronous_commit off at most 3 × wal_writer_delay (read from the
//     server) before an immediate shutdown, or during it, which the
//     database then forgot;
//   - the workers kept running, did not spin the CPU while they could not
//     reach the database, and said what was wrong in a bounded number of
//     log lines, whatever the length of the outage;
//   - how long recovery took: from the end of the fault to the first job
//     fetched and run after it, and to the jobs table being empty.
//
// Scenarios: a fast and an immediate restart; the server stopped for 8 s
// and for 60 s; the repro of a named queue wedged by an 8 s outage
// under gworker run; an 8 s outage longer than the recovery's stale
// threshold; every backend terminated once a second; SIGKILL of a library
// worker and of gworker run (whose task processes must die with it); the
// LISTEN session killed; a statement timeout and a lock timeout set on the
// server; the server turned read-only (SQLSTATE 25006); too many
// connections (53300); the schema dropped; and commits whose result the
// worker never learns (a proxy severs connections right after the server
// answered a fetch, a completion or a failure).
//
// go test ./faults runs the quick variant, as part of make test. With
// GWORKER_CHAOS=1 (make chaos) the faults are longer and repeated, the load
// heavier and spread over more processes. GWORKER_FAULTS_REPORT=FILE
// writes the results as a Markdown table (docs/reliability.md shows one),
// and GWORKER_FAULTS_LOGS=1 shows the end of every worker's log, not only
// a failed scenario's.
//
// The suite needs the local PostgreSQL server binaries: it stops and
// restarts its clusters, which $GWORKER_TEST_DATABASE_URL or a container
// cannot offer.
package faults
