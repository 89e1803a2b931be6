package core

import (
	"context"
	"log/slog"
	mathrand "math/rand/v2"
	"time"
)

// staleLockReset frees locks older than 4 hours (graphile-worker's rule
// for crashed workers), first at a random moment within a minute, then
// every Min..MaxResetLockedInterval, jittered so that many workers do not
// sweep together.
type staleLockReset struct {
	w     *Worker
	clock Clock
	routine
}

func newStaleLockReset(w *Worker) *staleLockReset {
	return &staleLockReset{w: w, clock: w.opts.Clock}
}

func (s *staleLockReset) Start(ctx context.Context) error {
	s.start(ctx, s.run)
	return nil
}

func (s *staleLockReset) Stop() { s.stop() }

func (s *staleLockReset) run(ctx context.Context) {
	o := s.w.opts
	first := min(time.Minute, o.MaxResetLockedInterval)
	t := s.clock.NewTimer(time.Duration(mathrand.Int64N(int64(first) + 1)))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		if _, err := s.w.db.Exec(ctx, s.w.sql.resetLockedAt); err != nil && ctx.Err() == nil {
			s.w.log.Warn("gworker: freeing stale locks failed", slog.Any("error", err))
		}
		span := int64(o.MaxResetLockedInterval - o.MinResetLockedInterval)
		t.Reset(o.MinResetLockedInterval + time.Duration(mathrand.Int64N(span+1)))
	}
}
