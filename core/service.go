package core

import "context"

// service is a piece of a worker's background work: dead-worker recovery
// (registration, heartbeats and sweeps), the stale-lock reset, the cron
// runner, the listener and the completer. They all start and stop the same way: Start launches
// the work and returns once it runs, or an error if it cannot; Stop ends it
// and returns only once it has ended, so that nothing of a stopped worker
// is left running. Each is started at most once.
type service interface {
	Start(ctx context.Context) error
	Stop()
}

// Every part of a worker's background work has the one shape.
var (
	_ service = (*recovery)(nil)
	_ service = (*cronRunner)(nil)
	_ service = (*staleLockReset)(nil)
	_ service = (*listener)(nil)
	_ service = (*completer)(nil)
)

// services are started in order and stopped in reverse.
type services []service

// start starts each service; when one fails, it stops those it started
// and returns the error.
func (ss services) start(ctx context.Context) error {
	for i, s := range ss {
		if err := s.Start(ctx); err != nil {
			ss[:i].stop()
			return err
		}
	}
	return nil
}

func (ss services) stop() {
	for i := len(ss) - 1; i >= 0; i-- {
		ss[i].Stop()
	}
}

// routine is the goroutine of a service whose work ends with its context:
// start runs fn on a context derived from ctx, stop cancels that context
// and waits for fn to return. stop before start does nothing.
type routine struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (r *routine) start(ctx context.Context, fn func(context.Context)) {
	ctx, r.cancel = context.WithCancel(ctx)
	r.done = make(chan struct{})
	go func() {
		defer close(r.done)
		fn(ctx)
	}()
}

func (r *routine) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
}
