package core

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	retrywait "github.com/gworker/gworker/internal/backoff"
)

// A database outage is a normal event for a worker: the server restarts,
// fails over to a replica, refuses connections for a while, or its schema
// is dropped. Each background part of the worker (fetch, outcome recording,
// heartbeats, sweeps) keeps going with backoff, and says once per outage
// what is wrong and once when it is over, instead of a line per retry or
// per job.

// dbProblem explains in one phrase what a database error means for an
// operator, and what to do about it.
func dbProblem(err error) string {
	state := sqlState(err)
	switch {
	case state == "25006":
		return "the server is read-only (SQLSTATE 25006): a failover may have left this connection on a replica; waiting for a writable primary"
	case state == "53300":
		return "the server refuses connections (too many connections, SQLSTATE 53300): raise max_connections or the role's connection limit, or lower pool sizes"
	case state == "57014":
		return "a statement was cancelled (SQLSTATE 57014): a statement_timeout set on the server or role may be too short for gworker's statements"
	case state == "55P03":
		return "a lock could not be taken (SQLSTATE 55P03): a lock_timeout set on the server or role may be too short"
	case state == "3F000" || state == "42P01":
		return fmt.Sprintf("the schema or one of its tables is missing (SQLSTATE %s): was it dropped? run gworker's migrations again", state)
	case strings.HasPrefix(state, "57P"):
		return fmt.Sprintf("the server is shutting down or restarting (SQLSTATE %s)", state)
	case strings.HasPrefix(state, "08"):
		return fmt.Sprintf("the connection to the server failed (SQLSTATE %s)", state)
	case strings.HasPrefix(state, "53"):
		return fmt.Sprintf("the server is out of resources (SQLSTATE %s)", state)
	case state == "":
		// No SQLSTATE: the server was not reached, or the driver itself
		// refused (the error says which).
		return "the database cannot be reached, or the driver failed"
	default:
		return fmt.Sprintf("the database returned SQLSTATE %s", state)
	}
}

// jobSpecific reports whether err is about the data of the statement
// (invalid input, a violated constraint) rather than the database being
// unavailable: retrying the same statement cannot help, but the same
// statement for other jobs may succeed.
func jobSpecific(err error) bool {
	state := sqlState(err)
	return strings.HasPrefix(state, "22") || strings.HasPrefix(state, "23")
}

// outageLog logs the start and the end of one part's outage, once each.
type outageLog struct {
	log   *slog.Logger
	clock Clock
	what  string // "fetching jobs", "recording job outcomes", ...

	mu       sync.Mutex
	since    time.Time // zero while the database answers
	problem  string    // what was logged at the start
	failures int
}

func newOutageLog(log *slog.Logger, clock Clock, what string) *outageLog {
	return &outageLog{log: log, clock: clock, what: what}
}

// failed notes a failure and logs it if it starts an outage, or if the
// problem changed (say, from a refused connection to a read-only server).
// It returns how many failures in a row there have been.
func (o *outageLog) failed(err error, attrs ...any) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.failures++
	problem := dbProblem(err)
	if o.since.IsZero() || problem != o.problem {
		if o.since.IsZero() {
			o.since = o.clock.Now()
		}
		o.problem = problem
		o.log.Warn(fmt.Sprintf("gworker: %s failed: %s; retrying with backoff until it works", o.what, problem),
			append([]any{slog.Any("error", err)}, attrs...)...)
	} else {
		o.log.Debug(fmt.Sprintf("gworker: %s failed again", o.what), slog.Int("failures", o.failures), slog.Any("error", err))
	}
	return o.failures
}

// ok notes a success, and logs the end of an outage.
func (o *outageLog) ok(attrs ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.since.IsZero() {
		o.failures = 0
		return
	}
	o.log.Info(fmt.Sprintf("gworker: %s works again", o.what),
		append([]any{slog.Duration("after", o.clock.Now().Sub(o.since).Round(time.Millisecond)), slog.Int("failures", o.failures)}, attrs...)...)
	o.since, o.problem, o.failures = time.Time{}, "", 0
}

// dbHealth remembers when this worker last lost the database, so that a
// sweep does not take a gap in other workers' heartbeats for death when
// this worker's own loss of the database explains it: they could not reach
// the database either. Its methods are given the time by the worker's
// clock.
type dbHealth struct {
	mu   sync.Mutex
	lost time.Time // zero: never, since the worker started
}

func (h *dbHealth) noteLoss(now time.Time) {
	h.mu.Lock()
	h.lost = now
	h.mu.Unlock()
}

// stableFor reports how long, at now, the database has answered this
// worker without a failure; forever (a huge duration) if it never failed.
func (h *dbHealth) stableFor(now time.Time) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lost.IsZero() {
		return time.Duration(1<<63 - 1)
	}
	return now.Sub(h.lost)
}

// backoff grows from 100ms to max, with jitter.
func backoff(failures int, max time.Duration) time.Duration {
	return retrywait.Wait(failures, 100*time.Millisecond, max)
}
