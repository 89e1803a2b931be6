package core

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// completer records job outcomes in batches: whatever accumulates while one
// statement runs goes out together in the next, so under load a handful of
// statements record hundreds of jobs, and an idle worker records each job
// at once.
//
// An outcome is never dropped while the worker lives: a job whose outcome
// is not recorded stays locked by this live worker, and nothing but the
// 4-hour rule would free it (nor its named queue). When the database cannot
// be reached the outcomes wait and are retried with capped backoff until
// they are recorded, and the loop fetches nothing meanwhile. Shutdown gives
// them the grace period, then names the jobs it leaves locked.
type completer struct {
	w       *Worker
	clock   Clock
	mu      sync.Mutex
	pending []outcome
	busy    bool
	// failing says the last flush could not reach the database: outcomes
	// wait for it, and the loop does not fetch.
	failing bool
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
	// riding counts completions a fetch in flight carries (takeRides).
	riding int
	// gaveUp says shutdown left outcomes unrecorded (giveUp).
	gaveUp bool
	outage *outageLog
	// maxRetryWait caps the wait between attempts while the database is
	// away, so that outcomes are recorded soon after it is back.
	maxRetryWait time.Duration
}

// maxBatch caps how many outcomes one flush records, so that a huge backlog
// does not become one huge statement.
const maxBatch = 5000

// Retry waits of the completer: while the database is away, and for a job
// whose own statement fails (invalid data), which must not hold back others.
const (
	completerRetryMax    = 2 * time.Second
	completerJobRetryMax = time.Minute
	// statementTimeout bounds one recording statement, so that a
	// connection that hangs is given up and retried.
	statementTimeout = 30 * time.Second
)

// newCompleter returns a completer; onFlush is told, after each flush, how
// many of its outcomes freed a slot (all but releases), how many of those
// also freed a named queue, and how many jobs went back unstarted, since
// the loop may then find more jobs.
func newCompleter(w *Worker, onFlush func(freed, queued, released int)) *completer {
	return &completer{w: w, clock: w.opts.Clock, sig: make(chan struct{}, 1), stopCh: make(chan struct{}), doneCh: make(chan struct{}),
		onFlush: onFlush, flushAt: maxBatch, outage: newOutageLog(w.log, w.opts.Clock, "recording job outcomes"), maxRetryWait: completerRetryMax}
}

// backlog is how many outcomes wait to be recorded.
func (c *completer) backlog() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// mayFetch reports whether the loop may fetch: fewer than limit outcomes
// wait, none waits for the database to come back and, with settled, every
// outcome is recorded.
func (c *completer) mayFetch(limit int, settled bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending) < limit && !c.failing && (!settled || (len(c.pending) == 0 && !c.busy && c.riding == 0))
}

// rides reports whether o may be recorded by a fetch (takeRides).
func rides(o outcome) bool {
	return o.kind == outcomeComplete && o.job.jobQueueID == nil && o.tries == 0
}

// takeRides removes the completions a fetch may record from pending, and
// returns them: those of jobs without a named queue, not waiting for a
// retry of their own, unless the database is failing (the completer's
// retries and outage logs handle those) or CompleteJobBatchDelay asks
// the completer to gather them. rode must follow.
func (c *completer) takeRides() []outcome {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failing || len(c.pending) == 0 || c.w.opts.CompleteJobBatchDelay > 0 {
		return nil // a batch delay asks the completer to gather them
	}
	var taken []outcome
	if len(c.pending) <= maxBatch && !slices.ContainsFunc(c.pending, func(o outcome) bool { return !rides(o) }) {
		taken, c.pending = c.pending, nil // the usual case: all of them, with no copy
	} else {
		keep := make([]outcome, 0, len(c.pending))
		for _, o := range c.pending {
			if len(taken) < maxBatch && rides(o) {
				taken = append(taken, o)
			} else {
				keep = append(keep, o)
			}
		}
		c.pending = keep
	}
	c.riding += len(taken)
	return taken
}

// rode takes back the completions a fetch carried: recorded when err is
// nil, else pending again, for the completer to retry as its own.
func (c *completer) rode(taken []outcome, err error) {
	c.mu.Lock()
	c.riding -= len(taken)
	if err != nil {
		if len(c.pending) == 0 {
			c.first = c.clock.Now()
		}
		c.pending = append(taken, c.pending...)
	}
	c.mu.Unlock()
	if err != nil {
		c.signal()
		return
	}
	c.flushes.Add(1)
	c.notify(taken)
}

// Start runs the completer. Cancelling ctx does not stop it: only Stop
// does, once shutdown has handed it every outcome.
func (c *completer) Start(context.Context) error {
	go c.run()
	return nil
}

func (c *completer) add(o outcome) {
	c.mu.Lock()
	if len(c.pending) == 0 {
		c.first = c.clock.Now()
	}
	c.pending = append(c.pending, o)
	c.mu.Unlock()
	c.signal()
}

func (c *completer) signal() {
	select {
	case c.sig <- struct{}{}:
	default:
	}
}

// idle reports whether every outcome added so far is recorded.
func (c *completer) idle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending) == 0 && !c.busy && c.riding == 0
}

// Stop records what is pending, retrying for at most the grace period, and
// waits for it. What it could not record stays locked by this worker, and
// is named in the log.
func (c *completer) Stop() {
	close(c.stopCh)
	<-c.doneCh
}

// take removes up to maxBatch outcomes that may be tried now from pending.
func (c *completer) take(now time.Time) []outcome {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) <= maxBatch && !c.anyWaiting(now) {
		// The usual case: everything goes, with no copy.
		batch := c.pending
		c.pending = nil
		c.busy = len(batch) > 0
		return batch
	}
	var batch, rest []outcome
	for i, o := range c.pending {
		if len(batch) == maxBatch {
			rest = append(rest, c.pending[i:]...)
			break
		}
		if o.retryAt.After(now) {
			rest = append(rest, o)
			continue
		}
		batch = append(batch, o)
	}
	if len(batch) == len(c.pending) {
		c.pending = nil
	} else {
		c.pending = rest
		c.first = now
	}
	c.busy = len(batch) > 0
	return batch
}

// anyWaiting reports whether a pending outcome waits for a retry of its
// own after now. c.mu is held.
func (c *completer) anyWaiting(now time.Time) bool {
	for _, o := range c.pending {
		if o.retryAt.After(now) {
			return true
		}
	}
	return false
}

// putBack returns outcomes that could not be recorded to the front of the
// pending ones: they are the oldest.
func (c *completer) putBack(retry []outcome) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(retry) > 0 {
		c.pending = append(retry, c.pending...)
		c.first = c.clock.Now()
	}
	c.busy = false
}

// nextRetry is how long until the earliest outcome that waits for a retry
// of its own may be tried; 0 if none waits.
func (c *completer) nextRetry(now time.Time) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var d time.Duration
	for _, o := range c.pending {
		if w := o.retryAt.Sub(now); w > 0 && (d == 0 || w < d) {
			d = w
		}
	}
	return d
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
	return max(0, delay-c.clock.Now().Sub(c.first))
}

func (c *completer) run() {
	defer close(c.doneCh)
	stopping := false
	var deadline time.Time // once stopping: when to give up on what is left
	failures := 0          // flushes in a row that could not reach the database
	retry := stoppedTimer(c.clock)
	defer retry.Stop()
	gather := stoppedTimer(c.clock)
	defer gather.Stop()
	// pause waits d, or less when shutdown starts or its deadline comes.
	pause := func(d time.Duration) {
		if stopping {
			d = min(d, max(deadline.Sub(c.clock.Now()), 0))
		}
		stop := c.stopCh
		if stopping {
			stop = nil // closed already: it would not wait
		}
		retry.Reset(d)
		select {
		case <-retry.C():
		case <-stop:
			stopping, deadline = true, c.clock.Now().Add(c.gracePeriod())
		}
	}
	for {
		if !stopping {
			if d := c.nextRetry(c.clock.Now()); d > 0 {
				retry.Reset(d)
			}
			select {
			case <-c.sig:
			case <-retry.C():
			case <-c.stopCh:
				stopping, deadline = true, c.clock.Now().Add(c.gracePeriod())
			}
		}
		for {
			// Gather until the delay passes, enough outcomes arrived, or
			// shutdown; each new outcome re-evaluates.
			for d := c.wait(); d > 0 && !stopping; d = c.wait() {
				gather.Reset(d)
				select {
				case <-gather.C():
				case <-c.sig:
				case <-c.stopCh:
					stopping, deadline = true, c.clock.Now().Add(c.gracePeriod())
				}
				gather.Stop()
			}
			batch := c.take(c.clock.Now())
			if len(batch) == 0 {
				break
			}
			recorded, retryLater, envErr := c.flush(batch)
			c.flushes.Add(1)
			c.putBack(retryLater)
			if envErr != nil {
				failures++
				c.mu.Lock()
				c.failing = true
				c.mu.Unlock()
				c.outage.failed(envErr, slog.Int("waiting", c.backlog()))
				c.w.health.noteLoss(c.clock.Now())
			} else {
				if failures > 0 {
					c.mu.Lock()
					c.failing = false
					c.mu.Unlock()
					c.outage.ok(slog.Int("recorded", len(recorded)))
				}
				failures = 0
			}
			if len(recorded) > 0 || envErr == nil {
				c.notify(recorded)
			}
			if stopping && !c.clock.Now().Before(deadline) {
				c.giveUp()
				return
			}
			if envErr != nil {
				pause(backoff(failures, c.maxRetryWait))
			}
		}
		if stopping {
			if c.backlog() == 0 {
				return
			}
			// Only outcomes waiting for a retry of their own are left.
			if d := c.nextRetry(c.clock.Now()); d > 0 && c.clock.Now().Add(d).Before(deadline) {
				pause(d)
				continue
			}
			c.giveUp()
			return
		}
	}
}

// gracePeriod is how long shutdown keeps trying to record outcomes.
func (c *completer) gracePeriod() time.Duration {
	return max(c.w.opts.GracePeriod, time.Second)
}

// notify tells the loop what a flush freed.
func (c *completer) notify(recorded []outcome) {
	// Released jobs were never started: they free no slot, and fetching
	// them straight back would defeat their release.
	freed, queued, released := 0, 0, 0
	for _, o := range recorded {
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

// giveUp says, in one line, which jobs shutdown leaves locked because
// their outcomes could not be recorded in time. The worker's registration
// stays (it holds locks), so a sweep by another worker frees them once its
// heartbeat is stale.
func (c *completer) giveUp() {
	c.mu.Lock()
	left := c.pending
	c.pending = nil
	c.mu.Unlock()
	if len(left) == 0 {
		return
	}
	c.gaveUp = true
	ids := make([]int64, 0, min(len(left), 100))
	for _, o := range left[:min(len(left), 100)] {
		ids = append(ids, o.job.ID)
	}
	c.w.log.Error(fmt.Sprintf("gworker: shutdown could not record the outcome of %d jobs within the grace period; "+
		"they stay locked by this worker until a sweep of dead workers frees them (or graphile-worker's 4-hour rule, "+
		"or force_unlock_workers)", len(left)), slog.Any("job_ids", ids), slog.Bool("more", len(left) > len(ids)))
}

// flush records a batch with one statement per kind of outcome. It returns
// the outcomes recorded, those to try again and, when the database could
// not be reached, the error. A statement rejected for its data (one bad
// job) is retried job by job, so that the bad job cannot hold back the
// others; that job is tried again later on its own, with a longer backoff.
func (c *completer) flush(batch []outcome) (recorded, retry []outcome, envErr error) {
	var completes, returns, releases, fails []outcome
	for _, o := range batch {
		switch o.kind {
		case outcomeComplete:
			completes = append(completes, o)
		case outcomeFail:
			fails = append(fails, o)
		case outcomeReturn:
			returns = append(returns, o)
		case outcomeRelease:
			releases = append(releases, o)
		}
	}
	c.w.log.Debug("gworker: recording outcomes", slog.Int("complete", len(completes)), slog.Int("fail", len(fails)),
		slog.Int("return", len(returns)), slog.Int("release", len(releases)))
	groups := []struct {
		what string
		os   []outcome
		stmt func(context.Context, []outcome) error
	}{
		{"complete", completes, c.completeJobs},
		{"fail", fails, c.failJobs},
		{"return", returns, c.returnJobs},
		{"release", releases, c.releaseJobs},
	}
	var done [][]outcome // groups recorded whole
	for _, g := range groups {
		if len(g.os) == 0 {
			continue
		}
		if envErr != nil {
			// The database is away: do not wait for it once per kind.
			retry = append(retry, g.os...)
			continue
		}
		err := c.exec(g.stmt, g.os)
		switch {
		case err == nil:
			done = append(done, g.os)
		case !jobSpecific(err):
			envErr = err
			retry = append(retry, g.os...)
		default:
			c.w.log.Warn(fmt.Sprintf("gworker: recording %d jobs as %s was rejected for its data; trying one by one", len(g.os), g.what),
				slog.Any("error", err))
			ok, again, err := c.oneByOne(g.what, g.stmt, g.os)
			recorded = append(recorded, ok...)
			retry = append(retry, again...)
			envErr = err
		}
	}
	if envErr == nil && len(retry) == 0 && len(recorded) == 0 {
		return batch, nil, nil // the usual case: all of it, with no copy
	}
	for _, os := range done {
		recorded = append(recorded, os...)
	}
	return recorded, retry, envErr
}

// oneByOne records each outcome with a statement of its own.
func (c *completer) oneByOne(what string, stmt func(context.Context, []outcome) error, os []outcome) (recorded, retry []outcome, envErr error) {
	for i, o := range os {
		if envErr != nil {
			retry = append(retry, os[i:]...)
			break
		}
		err := c.exec(stmt, []outcome{o})
		switch {
		case err == nil:
			recorded = append(recorded, o)
		case !jobSpecific(err):
			envErr = err
			retry = append(retry, o)
		default:
			o.tries++
			o.retryAt = c.clock.Now().Add(backoff(o.tries, completerJobRetryMax))
			if o.tries == 1 {
				c.w.jobLogger(o.job).Error(fmt.Sprintf("gworker: recording job as %s failed; it stays locked by this worker "+
					"and recording is retried with backoff", what), slog.Any("error", err))
			}
			retry = append(retry, o)
		}
	}
	return recorded, retry, envErr
}

func (c *completer) exec(stmt func(context.Context, []outcome) error, os []outcome) error {
	ctx, cancel := context.WithTimeout(context.Background(), statementTimeout)
	defer cancel()
	return stmt(ctx, os)
}

// The statements touch only rows this worker still holds (locked_by), so
// an outcome recorded late, or twice after a lost connection, cannot
// overwrite a job that a sweep freed and another worker locked since. A
// completion also deletes its job when nobody holds it and it is the very
// job that ran (same revision): a sweep took the worker for dead, but the
// job did succeed, and running it again would be a needless duplicate.

func (c *completer) completeJobs(ctx context.Context, os []outcome) error {
	ids, revisions := completionArgs(os)
	_, err := c.w.db.Exec(ctx, c.w.sql.complete, ids, c.w.id, revisions)
	return err
}

// completionArgs returns the ids and revisions of completed jobs, as the
// statements that record completions take them.
func completionArgs(os []outcome) (ids, revisions []int64) {
	ids, revisions = make([]int64, len(os)), make([]int64, len(os))
	for i, o := range os {
		ids[i], revisions[i] = o.job.ID, int64(o.job.Revision)
	}
	return ids, revisions
}

func (c *completer) failJobs(ctx context.Context, os []outcome) error {
	type item struct {
		ID        int64           `json:"id"`
		Message   string          `json:"message"`
		Payload   json.RawMessage `json:"payload,omitempty"`
		Permanent bool            `json:"permanent,omitempty"`
		Snooze    *float64        `json:"snooze,omitempty"` // seconds
	}
	items := make([]item, len(os))
	for i, o := range os {
		items[i] = item{ID: o.job.ID, Message: o.message, Payload: o.payload, Permanent: o.permanent}
		if o.snooze {
			d := o.delay.Seconds()
			items[i].Snooze = &d
		}
	}
	b, err := json.Marshal(items)
	if err != nil {
		return err
	}
	_, err = c.w.db.Exec(ctx, c.w.sql.fail, c.w.id, json.RawMessage(b))
	return err
}

func (c *completer) returnJobs(ctx context.Context, os []outcome) error {
	delay := max(c.w.opts.InterruptedRetryDelay, 0).Seconds()
	_, err := c.w.db.Exec(ctx, c.w.sql.returnJobs, c.w.id, outcomeIDs(os), delay, interruptedMessage)
	return err
}

func (c *completer) releaseJobs(ctx context.Context, os []outcome) error {
	_, err := c.w.db.Exec(ctx, c.w.sql.returnJobs, c.w.id, outcomeIDs(os), nil, nil)
	return err
}

func outcomeIDs(os []outcome) []int64 {
	ids := make([]int64, len(os))
	for i, o := range os {
		ids[i] = o.job.ID
	}
	return ids
}
