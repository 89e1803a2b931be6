package core

import "sync"

// wakeups counts the jobs worth fetching that the loop has heard of since
// it last looked (notifications, reconnections, recorded outcomes), and
// signals it. Many wake-ups between two looks add up to one.
type wakeups struct {
	// once: RunOnce, which counts as without a local queue.
	once bool
	sig  chan struct{}

	mu sync.Mutex
	// localQueue: slots are filled from the local queue, not by fetches
	// (the fetcher says when, as an adaptive local queue comes and goes).
	localQueue bool
	n          int
	released   int // jobs handed back unstarted since a completion
}

func newWakeups(once bool) *wakeups {
	return &wakeups{once: once, sig: make(chan struct{}, 1)}
}

// setLocalQueue says whether slots are now filled from the local queue.
func (w *wakeups) setLocalQueue(on bool) {
	w.mu.Lock()
	w.localQueue = on && !w.once
	w.mu.Unlock()
}

// wake asks the loop to try to fill n more slots.
func (w *wakeups) wake(n int) {
	if n > 0 {
		w.poke(n)
	}
}

// poke adds n to the slots worth filling and makes the loop look again.
func (w *wakeups) poke(n int) {
	w.mu.Lock()
	w.n += n
	w.mu.Unlock()
	select {
	case w.sig <- struct{}{}:
	default:
	}
}

// flushed wakes the loop after outcomes were recorded. Without a local
// queue each job freed a slot to fill. With one, slots are filled from the
// buffer, and a fetch after a completion is worth it only where it can
// find jobs no notification announces: the next job of a freed named
// queue, or jobs this worker handed back unstarted (TTL, a hook's skip),
// which the next completion fetches again, as it always did. RunOnce must
// fetch once more to know it is done. Otherwise an idle worker would
// follow each job with an empty fetch, and start a refetch delay just when
// it should be listening.
//
// Either way the loop looks again, since a smaller backlog may let it fetch.
func (w *wakeups) flushed(freed, queued, released int) {
	n := freed
	w.mu.Lock()
	if w.localQueue {
		w.released += released
		n = queued
		if freed > 0 {
			n += w.released
			w.released = 0
		}
	}
	w.mu.Unlock()
	w.poke(n)
}

// take returns the slots worth filling heard of since the last take.
func (w *wakeups) take() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := w.n
	w.n = 0
	return n
}
