package core

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
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
	onFlush func(n int)
}

func newCompleter(w *Worker) *completer {
	return &completer{w: w, sig: make(chan struct{}, 1), stopCh: make(chan struct{}), doneCh: make(chan struct{})}
}

// start runs the completer; onFlush is told how many outcomes each flush
// recorded, since completions free queues and slots.
func (c *completer) start(onFlush func(n int)) {
	c.onFlush = onFlush
	go c.run()
}

func (c *completer) add(o outcome) {
	c.mu.Lock()
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
	c.pending = nil
	c.busy = len(batch) > 0
	return batch
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
			batch := c.take()
			if len(batch) == 0 {
				break
			}
			c.flush(batch)
			c.mu.Lock()
			c.busy = false
			c.mu.Unlock()
			c.onFlush(len(batch))
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
	var completes, returns []*Job
	var fails []outcome
	for _, o := range batch {
		switch o.kind {
		case outcomeComplete:
			completes = append(completes, o.job)
		case outcomeFail:
			fails = append(fails, o)
		case outcomeReturn:
			returns = append(returns, o.job)
		}
	}
	if len(completes) > 0 {
		c.record("complete", completes, func(ctx context.Context, jobs []*Job) error {
			_, err := c.w.db.Exec(ctx, c.w.sql.complete, jobIDs(jobs), c.w.id)
			return err
		})
	}
	if len(fails) > 0 {
		byID := make(map[int64]string, len(fails))
		jobs := make([]*Job, len(fails))
		for i, o := range fails {
			byID[o.job.ID], jobs[i] = o.message, o.job
		}
		c.record("fail", jobs, func(ctx context.Context, jobs []*Job) error {
			type item struct {
				ID      int64  `json:"id"`
				Message string `json:"message"`
			}
			items := make([]item, len(jobs))
			for i, j := range jobs {
				items[i] = item{ID: j.ID, Message: byID[j.ID]}
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
