package core

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// completer records job outcomes in batches: whatever accumulates while one
// statement runs goes out together in the next, so under load a handful of
// statements record hundreds of jobs, and an idle worker records each job
// at once. Shutdown does not cancel it: every outcome is flushed.
type completer struct {
	w       *Worker
	mu      sync.Mutex
	pending []outcome
	busy    bool
	sig     chan struct{}
	stopCh  chan struct{}
	doneCh  chan struct{}
	onFlush func(freed, queued, released int)
	first   time.Time // when the oldest pending outcome arrived
	// flushAt: this many pending outcomes flush at once, whatever the batch
	// delay; below the loop's back-pressure limit, so that a long delay can
	// never leave the loop waiting for a flush that waits for the delay.
	flushAt int
	flushes atomic.Int64
}

// maxBatch caps how many outcomes one flush records, so that a huge backlog
// does not become one huge statement.
const maxBatch = 5000

func newCompleter(w *Worker) *completer {
	return &completer{w: w, sig: make(chan struct{}, 1), stopCh: make(chan struct{}), doneCh: make(chan struct{}), flushAt: maxBatch}
}

// backlog is how many outcomes wait to be recorded.
func (c *completer) backlog() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// start runs the completer; onFlush is told, after each flush, how many of
// its outcomes freed a slot (all but releases), how many of those also
// freed a named queue, and how many jobs went back unstarted, since the
// loop may then find more jobs.
func (c *completer) start(onFlush func(freed, queued, released int)) {
	c.onFlush = onFlush
	go c.run()
}

func (c *completer) add(o outcome) {
	c.mu.Lock()
	if len(c.pending) == 0 {
		c.first = time.Now()
	}
	c.pending = append(c.pending, o)
	c.mu.Unlock()
	select {
	case c.sig <- struct{}{}:
	default:
	}
}

// idle reports whether every outcome added so far is recorded.
func (c *completer) idle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending) == 0 && !c.busy
}

// stop flushes what is pending and waits for it.
func (c *completer) stop() {
	close(c.stopCh)
	<-c.doneCh
}

func (c *completer) take() []outcome {
	c.mu.Lock()
	defer c.mu.Unlock()
	batch := c.pending
	if len(batch) > maxBatch {
		batch = batch[:maxBatch:maxBatch]
		c.pending = append([]outcome(nil), c.pending[maxBatch:]...)
		c.first = time.Now()
	} else {
		c.pending = nil
	}
	c.busy = len(batch) > 0
	return batch
}

// wait returns how long to keep gathering before the next flush: the
// batch delay of the pending outcomes' kinds (the shortest applies),
// measured from the oldest; 0 once it passed or the batch is full.
func (c *completer) wait() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) == 0 || len(c.pending) >= min(maxBatch, max(c.flushAt, 1)) {
		return 0
	}
	delay := time.Duration(-1)
	for _, o := range c.pending {
		d := time.Duration(0)
		switch o.kind {
		case outcomeComplete:
			d = c.w.opts.CompleteJobBatchDelay
		case outcomeFail:
			d = c.w.opts.FailJobBatchDelay
		}
		if delay < 0 || d < delay {
			delay = d
		}
		if delay == 0 {
			return 0
		}
	}
	return max(0, delay-time.Since(c.first))
}

func (c *completer) run() {
	defer close(c.doneCh)
	for {
		stopping := false
		select {
		case <-c.sig:
		case <-c.stopCh:
			stopping = true
		}
		for {
			// Gather until the delay passes, enough outcomes arrived, or
			// shutdown; each new outcome re-evaluates.
			for d := c.wait(); d > 0 && !stopping; d = c.wait() {
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-c.sig:
				case <-c.stopCh:
					stopping = true
				}
				t.Stop()
			}
			batch := c.take()
			if len(batch) == 0 {
				break
			}
			c.flush(batch)
			c.flushes.Add(1)
			c.mu.Lock()
			c.busy = false
			c.mu.Unlock()
			// Released jobs were never started: they free no slot, and
			// fetching them straight back would defeat their release.
			freed, queued, released := 0, 0, 0
			for _, o := range batch {
				switch {
				case o.kind == outcomeRelease:
					released++
				case o.job.jobQueueID != nil:
					queued++
					freed++
				default:
					freed++
				}
			}
			c.onFlush(freed, queued, released)
		}
		if stopping {
			return
		}
	}
}

// flush records a batch with one statement per kind of outcome. A statement
// that keeps failing falls back to one statement per job, so one bad job
// cannot hold back the others. A job whose outcome cannot be recorded at
// all stays locked and is logged: the lock-expiry rules make it runnable
// again, so it is retried rather than lost.
func (c *completer) flush(batch []outcome) {
	var completes, returns, releases []*Job
	var fails []outcome
	for _, o := range batch {
		switch o.kind {
		case outcomeComplete:
			completes = append(completes, o.job)
		case outcomeFail:
			fails = append(fails, o)
		case outcomeReturn:
			returns = append(returns, o.job)
		case outcomeRelease:
			releases = append(releases, o.job)
		}
	}
	c.w.log.Debug("gworker: recording outcomes", slog.Int("complete", len(completes)), slog.Int("fail", len(fails)),
		slog.Int("return", len(returns)), slog.Int("release", len(releases)))
	if len(completes) > 0 {
		c.record("complete", completes, func(ctx context.Context, jobs []*Job) error {
			_, err := c.w.db.Exec(ctx, c.w.sql.complete, jobIDs(jobs), c.w.id)
			return err
		})
	}
	if len(fails) > 0 {
		byID := make(map[int64]outcome, len(fails))
		jobs := make([]*Job, len(fails))
		for i, o := range fails {
			byID[o.job.ID], jobs[i] = o, o.job
		}
		c.record("fail", jobs, func(ctx context.Context, jobs []*Job) error {
			type item struct {
				ID      int64           `json:"id"`
				Message string          `json:"message"`
				Payload json.RawMessage `json:"payload,omitempty"`
			}
			items := make([]item, len(jobs))
			for i, j := range jobs {
				o := byID[j.ID]
				items[i] = item{ID: j.ID, Message: o.message, Payload: o.payload}
			}
			b, err := json.Marshal(items)
			if err != nil {
				return err
			}
			_, err = c.w.db.Exec(ctx, c.w.sql.fail, c.w.id, json.RawMessage(b))
			return err
		})
	}
	if len(returns) > 0 {
		delay := max(c.w.opts.InterruptedRetryDelay, 0).Seconds()
		c.record("return", returns, func(ctx context.Context, jobs []*Job) error {
			_, err := c.w.db.Exec(ctx, c.w.sql.returnJobs, c.w.id, jobIDs(jobs), delay, interruptedMessage)
			return err
		})
	}
	if len(releases) > 0 {
		c.record("release", releases, func(ctx context.Context, jobs []*Job) error {
			_, err := c.w.db.Exec(ctx, c.w.sql.returnJobs, c.w.id, jobIDs(jobs), nil, nil)
			return err
		})
	}
}

// record runs stmt for jobs, retrying with backoff, then job by job.
func (c *completer) record(what string, jobs []*Job, stmt func(context.Context, []*Job) error) {
	try := func(jobs []*Job, attempts int) error {
		var err error
		for i := 1; i <= attempts; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err = stmt(ctx, jobs)
			cancel()
			if err == nil {
				return nil
			}
			if i < attempts {
				time.Sleep(backoff(i, 5*time.Second))
			}
		}
		return err
	}
	err := try(jobs, 5)
	if err == nil {
		return
	}
	if len(jobs) == 1 {
		c.lost(what, jobs[0], err)
		return
	}
	c.w.log.Warn(fmt.Sprintf("gworker: recording %d jobs as %s failed; trying one by one", len(jobs), what), slog.Any("error", err))
	for _, j := range jobs {
		if err := try([]*Job{j}, 2); err != nil {
			c.lost(what, j, err)
		}
	}
}

func (c *completer) lost(what string, j *Job, err error) {
	c.w.jobLogger(j).Error(fmt.Sprintf("gworker: could not record job as %s; it stays locked by this worker until its lock is freed, then runs again", what),
		slog.Any("error", err))
}

func jobIDs(jobs []*Job) []int64 {
	ids := make([]int64, len(jobs))
	for i, j := range jobs {
		ids[i] = j.ID
	}
	return ids
}
