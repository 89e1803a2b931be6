package core

import (
	"context"
	"log/slog"
	mathrand "math/rand/v2"
	"time"
)

// staleLockRetryMax caps the wait between two tries of the stale-lock
// reset while the database fails. The reset is not urgent (a lock it frees
// is already 4 hours old), so it retries at most once a minute, but sooner
// than its regular period, so that the end of an outage is noticed and
// logged soon after the database is back.
const staleLockRetryMax = time.Minute

// staleLockReset frees locks older than 4 hours (graphile-worker's rule
// for crashed workers), first at a random moment within a minute, then
// every Min..MaxResetLockedInterval, jittered so that many workers do not
// sweep together.
//
// Like the worker's other background parts it outlives a database outage:
// it says once that the reset fails and why, retries with a backoff on the
// worker's clock (from 100ms up to min(staleLockRetryMax,
// MinResetLockedInterval)), and says once when it works again. A reset
// that freed locks logs how many jobs and queues it freed.
type staleLockReset struct {
	w      *Worker
	clock  Clock
	sql    string // frees the stale locks; returns how many jobs and queues
	outage *outageLog
	routine
}

// staleLockSQL frees, in one statement, the jobs and named queues locked
// more than 4 hours ago, and returns how many of each it freed. A freed
// job's run_at is moved to now if it lies in the past, as graphile-worker
// does.
const staleLockSQL = `with stale_jobs as (
  update {{schema}}._private_jobs
  set locked_at = null, locked_by = null, run_at = greatest(run_at, now())
  where locked_at < now() - interval '4 hours'
  returning 1
), stale_queues as (
  update {{schema}}._private_job_queues
  set locked_at = null, locked_by = null
  where locked_at < now() - interval '4 hours'
  returning 1
)
select (select count(*) from stale_jobs), (select count(*) from stale_queues)`

func newStaleLockReset(w *Worker) *staleLockReset {
	return &staleLockReset{
		w:      w,
		clock:  w.opts.Clock,
		sql:    newRenderer(w.opts.Schema).render(staleLockSQL),
		outage: newOutageLog(w.log, w.opts.Clock, "freeing stale locks"),
	}
}

func (s *staleLockReset) Start(ctx context.Context) error {
	s.start(ctx, s.run)
	return nil
}

func (s *staleLockReset) Stop() { s.stop() }

func (s *staleLockReset) run(ctx context.Context) {
	o := s.w.opts
	first := min(time.Minute, o.MaxResetLockedInterval)
	retryMax := min(staleLockRetryMax, o.MinResetLockedInterval)
	t := s.clock.NewTimer(time.Duration(mathrand.Int64N(int64(first) + 1)))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		jobs, queues, err := s.reset(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			s.w.health.noteLoss(s.clock.Now())
			failures := s.outage.failed(err)
			t.Reset(backoff(failures, retryMax))
			continue
		}
		s.outage.ok()
		if jobs > 0 || queues > 0 {
			s.w.log.Info("gworker: freed locks older than 4 hours (their workers are taken for crashed)",
				slog.Int64("jobs", jobs), slog.Int64("queues", queues))
		}
		span := int64(o.MaxResetLockedInterval - o.MinResetLockedInterval)
		t.Reset(o.MinResetLockedInterval + time.Duration(mathrand.Int64N(span+1)))
	}
}

// reset runs the statement once and reports how many jobs and queues it
// freed.
func (s *staleLockReset) reset(ctx context.Context) (jobs, queues int64, err error) {
	_, err = queryOne(ctx, s.w.db, s.sql, nil, &jobs, &queues)
	return jobs, queues, err
}
