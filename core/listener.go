package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"
)

// listener turns notifications into work for the loop: jobs:insert wakes
// it, gworker:cancel hands it CancelJob's requests, and a breaking
// worker:migrate of this worker's schema stops it. It listens again, with
// backoff, whenever its connection is lost. When the driver cannot listen,
// polling does it all.
type listener struct {
	w       *Worker
	clock   Clock
	wake    *wakeups
	cancels *cancellations
	fatal   chan<- error
	routine
}

func newListener(w *Worker, wake *wakeups, cancels *cancellations, fatal chan<- error) *listener {
	return &listener{w: w, clock: w.opts.Clock, wake: wake, cancels: cancels, fatal: fatal}
}

func (l *listener) Start(ctx context.Context) error {
	l.start(ctx, l.listen)
	return nil
}

func (l *listener) Stop() { l.stop() }

func (l *listener) listen(ctx context.Context) {
	w := l.w
	outage := newOutageLog(w.log, l.clock, "listening for notifications (LISTEN)")
	for ctx.Err() == nil {
		n, err := w.db.Listen(ctx, "jobs:insert", "worker:migrate", cancelChannel)
		if errors.Is(err, ErrNotificationsUnsupported) {
			l.pollOnly(err)
			return
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures := outage.failed(err)
			sleep(ctx, l.clock, backoff(failures, 10*time.Second))
			continue
		}
		outage.ok()
		w.log.Debug("gworker: listening for notifications")
		// Jobs may have been added, and jobs of this worker cancelled,
		// while nobody listened.
		l.wake.wake(w.opts.Concurrency)
		l.missedCancels(ctx)
		l.receive(ctx, n)
		_ = n.Close(context.WithoutCancel(ctx))
	}
}

func (l *listener) receive(ctx context.Context, n Notifications) {
	w := l.w
	for {
		msg, err := n.Receive(ctx)
		if err != nil {
			if ctx.Err() == nil {
				w.log.Warn("gworker: notifications ended; listening again", slog.Any("error", err))
			}
			return
		}
		switch {
		case msg.Reconnected:
			w.log.Info("gworker: LISTEN connection re-established; polling now")
			l.wake.wake(w.opts.Concurrency)
			l.missedCancels(ctx)
		case msg.Channel == cancelChannel:
			var c cancelRequest
			if json.Unmarshal([]byte(msg.Payload), &c) == nil && c.Schema == w.opts.Schema && c.Worker == w.id {
				l.cancels.add(c)
			}
		case msg.Channel == "jobs:insert":
			l.wake.wake(insertCount(msg.Payload))
		case msg.Channel == "worker:migrate":
			if err := l.breaking(ctx, msg.Payload); err != nil {
				w.log.Error("gworker: breaking migration applied; shutting down", slog.Int("migration", err.Migration))
				select {
				case l.fatal <- err:
				default:
				}
			}
		}
	}
}

// breaking returns the error that stops the worker when a worker:migrate
// payload announces a breaking migration of its schema, else nil. The
// channel is server-wide and names no schema, and a migration this worker
// knows cannot break it: only a newer breaking migration of our own schema
// is a reason to stop.
func (l *listener) breaking(ctx context.Context, payload string) *BreakingMigrationError {
	var m struct {
		MigrationNumber int  `json:"migrationNumber"`
		Breaking        bool `json:"breaking"`
	}
	if json.Unmarshal([]byte(payload), &m) != nil || !m.Breaking || m.MigrationNumber <= LatestMigration {
		return nil
	}
	if _, breaking, err := l.w.utils.ledger(ctx); err == nil && breaking <= LatestMigration {
		return nil
	}
	return &BreakingMigrationError{Schema: l.w.opts.Schema, Migration: m.MigrationNumber}
}

// insertCount reads the job count of a jobs:insert payload
// ({"r":..., "count":N}); an empty or unreadable payload counts as 1.
func insertCount(payload string) int {
	if payload == "" {
		return 1
	}
	var p struct {
		Count *json.Number `json:"count"`
	}
	if err := json.Unmarshal([]byte(payload), &p); err != nil || p.Count == nil {
		return 1
	}
	n, err := strconv.ParseFloat(string(*p.Count), 64)
	if err != nil {
		return 1
	}
	if n > 1<<20 {
		return 1 << 20
	}
	return int(n)
}

// missedCancels finds the jobs of this worker that CancelJob cancelled
// while nobody listened (before LISTEN was in place, or while its
// connection was lost), and hands them to the loop as if their
// notifications had arrived. A cancelled job that a worker holds is the
// one CancelJob leaves out of attempts, with its "Cancelled" message, after
// it was locked (a fetch does not touch updated_at). It reads the jobs
// table, which has no index on locked_by, so it runs only when LISTEN is
// (re)established.
func (l *listener) missedCancels(ctx context.Context) {
	w := l.w
	rows, err := w.db.Query(ctx, w.sql.missedCancels, w.id, cancelledPrefix)
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("gworker: looking for jobs cancelled while not listening failed; they run to their end", slog.Any("error", err))
		}
		return
	}
	defer rows.Close()
	for rows.Next() {
		var c cancelRequest
		if err := rows.Scan(&c.ID, &c.Reason); err != nil {
			w.log.Warn("gworker: looking for jobs cancelled while not listening failed; they run to their end", slog.Any("error", err))
			return
		}
		c.Schema, c.Worker = w.opts.Schema, w.id
		l.cancels.add(c)
	}
	if err := rows.Err(); err != nil && ctx.Err() == nil {
		w.log.Warn("gworker: looking for jobs cancelled while not listening failed; they run to their end", slog.Any("error", err))
	}
}

// listenHint says how to build a driver that can LISTEN.
const listenHint = "build the driver with what it needs to listen: pgxdriver.Open(url) or pgxdriver.New(pool), " +
	"pqdriver.Open(url) or pqdriver.New(db, pqdriver.ListenDSN(url)), bundriver.Open(url) or " +
	"bundriver.New(db, bundriver.ListenDSN(url)); behind a transaction pooler such as PgBouncer, give any of them " +
	"a direct connection for LISTEN with ListenDSN(url) (gworker run: --listen-connection URL)"

// pollOnly says, loudly, that the driver cannot LISTEN: new jobs then wait
// for the next poll. With RequireNotifications it stops the worker instead.
func (l *listener) pollOnly(err error) {
	w := l.w
	if w.opts.RequireNotifications {
		err := fmt.Errorf("gworker: WorkerOptions.RequireNotifications is set, but the driver cannot LISTEN (%w); "+listenHint, err)
		w.log.Error(err.Error())
		select {
		case l.fatal <- err:
		default:
		}
		return
	}
	w.log.Warn("gworker: poll-only: the driver cannot LISTEN, so a new job waits up to the poll interval to start; "+
		listenHint+"; or set WorkerOptions.RequireNotifications to make this an error",
		slog.Duration("poll_interval", w.opts.PollInterval), slog.Any("error", err))
}
