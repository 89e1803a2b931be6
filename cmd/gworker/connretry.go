package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gworker/gworker/internal/backoff"
)

// The wait between attempts to start: from startRetryMin, doubling up to
// startRetryMax.
const (
	startRetryMin = 200 * time.Millisecond
	startRetryMax = 5 * time.Second
)

// startWait waits out, while run starts (connecting, migrating, registering
// the tasks and the worker), the database failures that end by themselves:
// no server answering yet (it is starting, restarting or failing over), a
// server that cannot take connections now (SQLSTATE 57P03) or has too many
// (53300), a connection that broke because the server went down. What
// classifyConnError does not call transient fails at once: a bad URL, a
// failed authentication, a database that does not exist, a migration
// refused for a schema newer than this gworker.
//
// An outage is logged once, as a warning when it starts and an info line
// when run has started after it; the failures in between are debug lines,
// whatever phases a restarting server goes through (gone, refusing,
// starting up).
type startWait struct {
	log      *slog.Logger
	since    time.Time // when the outage started; zero while there is none
	failures int
	started  bool // the worker started: its errors are no longer start-up's
}

// retry is given the error of an attempt to start. It returns false at
// once when err does not end by itself or ctx is done; else it waits with
// backoff and returns true, or false when ctx ends or SIGINT or SIGTERM
// arrives meanwhile.
func (s *startWait) retry(ctx context.Context, err error) bool {
	if s.started || ctx.Err() != nil || !classifyConnError(err).transient() {
		return false
	}
	s.failures++
	what, details := describeOutage(err)
	if s.since.IsZero() {
		s.since = time.Now()
		s.log.Warn("gworker: the database is not available yet: "+what+"; retrying with backoff until it is",
			slog.String("error", details))
	} else {
		s.log.Debug("gworker: the database is still not available: "+what, slog.Int("failures", s.failures),
			slog.String("error", details))
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	t := time.NewTimer(backoff.Wait(s.failures-1, startRetryMin, startRetryMax))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// workerStarted notes that the worker started, and logs the end of the
// outage it waited out, if any.
func (s *startWait) workerStarted() {
	s.started = true
	if s.failures > 0 {
		s.log.Info("gworker: the database is available; the worker started",
			slog.Duration("after", time.Since(s.since).Round(time.Millisecond)), slog.Int("attempts", s.failures+1))
	}
}
