package core

import "sync"

// cancelRequest is the payload of a cancelChannel notification.
type cancelRequest struct {
	Schema string `json:"schema"`
	ID     int64  `json:"id"`
	Worker string `json:"worker"`
	Reason string `json:"reason"`
}

// cancellations hands CancelJob's requests from the listener to the loop,
// which alone may touch the running and waiting jobs.
type cancellations struct {
	sig chan struct{}

	mu   sync.Mutex
	reqs []cancelRequest
}

func newCancellations() *cancellations {
	return &cancellations{sig: make(chan struct{}, 1)}
}

// add queues a request and signals the loop.
func (c *cancellations) add(req cancelRequest) {
	c.mu.Lock()
	c.reqs = append(c.reqs, req)
	c.mu.Unlock()
	select {
	case c.sig <- struct{}{}:
	default:
	}
}

// take returns the requests queued since the last take.
func (c *cancellations) take() []cancelRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	reqs := c.reqs
	c.reqs = nil
	return reqs
}

// applyCancels cancels the running or waiting jobs CancelJob asked for.
func (r *runner) applyCancels() {
	for _, c := range r.cancels.take() {
		if a, ok := r.active[c.ID]; ok && a.cancelled == "" {
			a.cancelled = c.Reason
			a.cancel(&CancelledError{Reason: c.Reason})
			continue
		}
		if job := r.buffer.remove(c.ID); job != nil {
			r.completer.add(outcome{job: job, kind: outcomeFail, message: c.Reason})
			r.emitCancelledWaiting(job, c.Reason)
		}
	}
}
