package core

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/gworker/gworker/cronspec"
)

// This file is the cron runner: graphile-worker's cron (COMPAT.md §5) for
// the entries of WorkerOptions.Crontab and WorkerOptions.Schedules.
//
// Every minute is scheduled by one statement that upserts each due entry's
// row in _private_known_crontabs, moving last_execution forward only if it
// is behind the minute, and adds a job only for the rows it moved. That
// row lock is the dedupe across workers, gworker and Node alike: whichever
// worker moves last_execution to a minute adds its jobs, and the others
// add none.

// CronEventKind names a CronEvent. The names are graphile-worker's cron
// events, plus cron:tick and cron:error of gworker's own.
type CronEventKind string

// The kinds of CronEvent, in the order a runner meets them.
const (
	// CronStarting: the runner (re)starts; it registers its entries and
	// back-fills next.
	CronStarting CronEventKind = "cron:starting"
	// CronBackfill: a missed minute was back-filled (Minute, Entries,
	// Fired), during start-up.
	CronBackfill CronEventKind = "cron:backfill"
	// CronStarted: registration and back-fill are done; the runner waits
	// for the next whole minute.
	CronStarted CronEventKind = "cron:started"
	// CronPrematureTimer: the timer for Minute fired while the clock still
	// read an earlier minute (the clock was set back); the runner waits
	// again.
	CronPrematureTimer CronEventKind = "cron:prematureTimer"
	// CronOverdueTimer: the clock reads a later minute than Minute, the one
	// due (the process stalled or the clock was set forward); the runner
	// schedules every minute from Minute on, one after the other, without
	// marking them back-filled.
	CronOverdueTimer CronEventKind = "cron:overdueTimer"
	// CronSchedule: entries are due at Minute (Entries); their jobs are
	// about to be added.
	CronSchedule CronEventKind = "cron:schedule"
	// CronScheduled: the jobs of Minute were added; Fired lists the entries
	// this worker added a job for (the others had been fired already, by
	// another worker or an earlier run).
	CronScheduled CronEventKind = "cron:scheduled"
	// CronTick: the runner is done with Minute, whether or not an entry was
	// due.
	CronTick CronEventKind = "cron:tick"
	// CronError: the runner failed (Err); it restarts after Delay, with
	// registration and back-fill.
	CronError CronEventKind = "cron:error"
)

// CronEvent is something the cron runner did, given to Hooks.OnEvent in
// order, on the runner's goroutine.
type CronEvent struct {
	Kind CronEventKind
	// Now is the clock's time when the event happened.
	Now time.Time
	// Minute is the minute concerned, in UTC: the one back-filled or
	// scheduled, or the one a timer was due at. Zero for CronStarting,
	// CronStarted and CronError.
	Minute time.Time
	// Entries are the identifiers of the entries due at Minute
	// (CronBackfill, CronSchedule, CronScheduled, CronTick).
	Entries []string
	// Fired are the identifiers, among Entries, whose jobs this worker
	// added (CronBackfill, CronScheduled, CronTick).
	Fired []string
	// Err and Delay: the failure and the wait before the restart
	// (CronError).
	Err   error
	Delay time.Duration
}

// Retry delays of a failing cron runner: doubling from the first to the
// last, with jitter.
const (
	cronRetryMinDelay = time.Second
	cronRetryMaxDelay = time.Minute
	// cronStatementTimeout bounds each statement, so that a hung
	// connection restarts the runner instead of stopping cron.
	cronStatementTimeout = time.Minute
)

// crontabError is an invalid WorkerOptions.Crontab: it names the option and
// wraps the *cronspec.ParseError.
type crontabError struct{ err error }

func (e *crontabError) Error() string {
	return "gworker: invalid WorkerOptions.Crontab: " + e.err.Error()
}
func (e *crontabError) Unwrap() error { return e.err }

// Is makes errors.Is(err, ErrInvalidInput) hold, as for a ValidationError.
func (e *crontabError) Is(target error) bool { return target == ErrInvalidInput }

// checkCron parses the crontab, validates the typed schedules and returns
// them all, crontab first. Identifiers must be unique across both.
func checkCron(crontab string, schedules []cronspec.Entry) (cronspec.Crontab, []error) {
	var errs []error
	parsed, err := cronspec.Parse(crontab)
	if err != nil {
		errs = append(errs, &crontabError{err: err})
	}
	all := make(cronspec.Crontab, 0, len(parsed)+len(schedules))
	seen := map[string]string{} // identifier -> where it was first seen
	for _, e := range parsed {
		all = append(all, e)
		seen[e.Identifier] = fmt.Sprintf("Crontab line %d", e.Line)
	}
	for i, e := range schedules {
		field := fmt.Sprintf("WorkerOptions.Schedules[%d]", i)
		if err := e.Validate(); err != nil {
			errs = append(errs, &ValidationError{Field: field, Value: e.Identifier, Reason: oneLineReason(err)})
			continue
		}
		if where, dup := seen[e.Identifier]; dup {
			errs = append(errs, &ValidationError{Field: field, Value: e.Identifier,
				Reason: "identifier is used twice (also " + where + "); give one entry another id"})
			continue
		}
		seen[e.Identifier] = fmt.Sprintf("Schedules[%d]", i)
		all = append(all, e)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return all, nil
}

// oneLineReason joins the lines of a (joined) error.
func oneLineReason(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

// cronRunner schedules the jobs of a worker's cron entries.
type cronRunner struct {
	db      Executor
	sql     cronSQL
	clock   Clock
	log     *slog.Logger
	events  func(CronEvent)
	entries cronspec.Crontab
	jobs    []cronJob // by entry
	ids     []string  // identifiers, by entry
	hooks   *hookSet  // the worker's: BeforeSchedule sees each job
	once    bool      // RunOnce: cron does not run
	routine
}

// Start starts the runner for Run; RunOnce does not run cron, as in
// graphile-worker, and neither does a worker without entries.
func (c *cronRunner) Start(ctx context.Context) error {
	if len(c.entries) == 0 {
		return nil
	}
	if c.once {
		c.log.Debug("gworker: cron does not run in RunOnce", slog.Int("entries", len(c.entries)))
		return nil
	}
	c.start(ctx, c.run)
	return nil
}

// Stop stops the runner and waits until it has stopped.
func (c *cronRunner) Stop() { c.stop() }

// cronJob is what an entry's jobs are made of, but for the minute.
type cronJob struct {
	identifier  string
	task        string
	payloadHead []byte // the payload up to the value of _cron
	payloadTail []byte // and after it
	queue       *string
	maxAttempts *int
	priority    *int
	jobKey      *string
	jobKeyMode  *string
}

func newCronRunner(w *Worker, once bool) *cronRunner {
	c := &cronRunner{
		once:    once,
		db:      w.db,
		sql:     newCronSQL(newRenderer(w.opts.Schema)),
		clock:   w.opts.Clock,
		log:     w.log,
		events:  w.cronEvents(),
		entries: w.opts.cron,
		hooks:   w.hooks,
	}
	for _, e := range c.entries {
		c.jobs = append(c.jobs, newCronJob(e))
		c.ids = append(c.ids, e.Identifier)
	}
	return c
}

func newCronJob(e cronspec.Entry) cronJob {
	o := e.Options
	j := cronJob{identifier: e.Identifier, task: e.Task}
	j.payloadHead, j.payloadTail = splitPayload(e.Payload)
	if o.Queue != "" {
		j.queue = &o.Queue
	}
	if o.MaxAttempts != 0 {
		j.maxAttempts = &o.MaxAttempts
	}
	if o.Priority != 0 {
		j.priority = &o.Priority
	}
	if o.JobKey != "" {
		j.jobKey = &o.JobKey
		mode := o.JobKeyMode
		if mode == "" {
			mode = cronspec.JobKeyModeReplace
		}
		j.jobKeyMode = &mode
	}
	return j
}

// splitPayload cuts an entry's payload (a JSON object, or nil) around the
// value of its _cron key, placed the way JavaScript's {...payload, _cron}
// places it: where the payload has a _cron key already, else last.
func splitPayload(p json.RawMessage) (head, tail []byte) {
	type member struct {
		key   string
		value json.RawMessage
	}
	var members []member
	cronAt := -1
	if len(bytes.TrimSpace(p)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(p))
		if _, err := dec.Token(); err == nil { // the object's {
			seen := map[string]bool{}
			for dec.More() {
				tok, err := dec.Token()
				if err != nil {
					break
				}
				key, _ := tok.(string)
				var v json.RawMessage
				if err := dec.Decode(&v); err != nil {
					break
				}
				if seen[key] {
					continue // an object has one member per key
				}
				seen[key] = true
				if key == "_cron" {
					cronAt = len(members)
					continue
				}
				members = append(members, member{key, v})
			}
		}
	}
	if cronAt < 0 {
		cronAt = len(members)
	}
	write := func(b *bytes.Buffer, ms []member) {
		for i, m := range ms {
			if i > 0 {
				b.WriteByte(',')
			}
			b.Write(jsonString(m.key))
			b.WriteByte(':')
			if json.Compact(b, m.value) != nil {
				b.Write(m.value)
			}
		}
	}
	var h, t bytes.Buffer
	h.WriteByte('{')
	write(&h, members[:cronAt])
	if cronAt > 0 {
		h.WriteByte(',')
	}
	h.WriteString(`"_cron":`)
	if cronAt < len(members) {
		t.WriteByte(',')
	}
	write(&t, members[cronAt:])
	t.WriteByte('}')
	return h.Bytes(), t.Bytes()
}

// jsonString encodes s as a JSON string the way JSON.stringify does (no
// escaping of <, > and &).
func jsonString(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return bytes.TrimRight(b.Bytes(), "\n")
}

// isoMinute writes t as JavaScript's Date.prototype.toISOString does.
func isoMinute(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// payload returns the job payload for minute ts.
func (j *cronJob) payload(ts string, backfilled bool) json.RawMessage {
	p := make([]byte, 0, len(j.payloadHead)+len(j.payloadTail)+64)
	p = append(p, j.payloadHead...)
	p = append(p, `{"ts":"`...)
	p = append(p, ts...)
	p = append(p, `","backfilled":`...)
	p = strconv.AppendBool(p, backfilled)
	p = append(p, '}')
	p = append(p, j.payloadTail...)
	return p
}

func (c *cronRunner) emit(e CronEvent) {
	if c.events != nil {
		c.events(e)
	}
}

// run runs the cron runner until ctx is done, restarting it with a backoff
// after each failure.
func (c *cronRunner) run(ctx context.Context) {
	failures := 0
	for {
		err := c.session(ctx, func() { failures = 0 })
		if ctx.Err() != nil {
			return
		}
		failures++
		delay := cronRetryDelay(failures)
		// Once per outage, not once per retry.
		level := slog.LevelError
		if failures > 1 {
			level = slog.LevelDebug
		}
		c.log.Log(ctx, level, "gworker: cron failed; restarting it with back-fill: "+dbProblem(err), slog.Any("error", err),
			slog.Int("failures", failures), slog.Duration("delay", delay))
		c.emit(CronEvent{Kind: CronError, Now: c.clock.Now(), Err: err, Delay: delay})
		if !c.sleep(ctx, delay) {
			return
		}
	}
}

// cronRetryDelay is the wait after the n-th failure in a row: doubling from
// cronRetryMinDelay up to cronRetryMaxDelay, between 75% and 100% of it.
func cronRetryDelay(n int) time.Duration {
	d := cronRetryMaxDelay
	if n < 20 {
		d = min(cronRetryMinDelay<<(n-1), cronRetryMaxDelay)
	}
	return d - time.Duration(mathrand.Int64N(int64(d/4)+1))
}

// sleep waits d on the runner's clock; it reports false when ctx ended
// first.
func (c *cronRunner) sleep(ctx context.Context, d time.Duration) bool {
	t := c.clock.NewTimer(d)
	select {
	case <-t.C():
		return true
	case <-ctx.Done():
		t.Stop()
		return false
	}
}

// session is one start of the runner: registration, back-fill, then the
// main loop. It returns nil when ctx ends, or the failure. started is
// called once back-fill is done.
func (c *cronRunner) session(ctx context.Context, started func()) error {
	start := c.clock.Now()
	c.emit(CronEvent{Kind: CronStarting, Now: start})
	known, err := c.register(ctx, start)
	if err != nil {
		return err
	}
	if err := c.backfill(ctx, start, known); err != nil {
		return err
	}
	started()
	c.emit(CronEvent{Kind: CronStarted, Now: c.clock.Now()})
	c.log.Debug("gworker: cron started", slog.Int("entries", len(c.entries)))
	return c.loop(ctx, ceilMinute(start).UTC())
}

// register inserts the entries it does not know into _private_known_crontabs
// with known_since = start, and returns, for those it knew, the first minute
// they may be back-filled at: the one after last_execution, or known_since
// (rounded up) when they never ran.
func (c *cronRunner) register(ctx context.Context, start time.Time) (map[string]time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, cronStatementTimeout)
	defer cancel()
	rows, err := c.db.Query(ctx, c.sql.register, c.ids, start)
	if err != nil {
		return nil, fmt.Errorf("gworker: cron: register entries: %w", err)
	}
	defer rows.Close()
	known := map[string]time.Time{}
	for rows.Next() {
		var (
			id         string
			knownSince time.Time
			last       *time.Time
		)
		if err := rows.Scan(&id, &knownSince, &last); err != nil {
			return nil, fmt.Errorf("gworker: cron: register entries: %w", err)
		}
		if last != nil {
			// That minute was scheduled; the statement would skip it.
			known[id] = last.Truncate(time.Minute).Add(time.Minute)
		} else {
			known[id] = ceilMinute(knownSince)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("gworker: cron: register entries: %w", err)
	}
	return known, nil
}

// backfill schedules, minute by minute and marked back-filled, the minutes
// before start at which known entries with a fill period were due: those
// within the period of start, from their last execution (or known_since)
// on. Minutes another worker scheduled are skipped by the statement.
func (c *cronRunner) backfill(ctx context.Context, start time.Time, known map[string]time.Time) error {
	type candidate struct {
		entry int
		from  time.Time // first minute it may be back-filled at
		next  time.Time // next minute it is due at, zero for none
	}
	var cands []*candidate
	for i, e := range c.entries {
		notBefore, ok := known[e.Identifier]
		if !ok || e.Options.Fill <= 0 {
			continue // new entries are not back-filled
		}
		from := ceilMinute(start.Add(-e.Options.Fill))
		if notBefore.After(from) {
			from = notBefore
		}
		cd := &candidate{entry: i, from: from, next: e.Schedule.Next(from.Add(-time.Minute))}
		cands = append(cands, cd)
	}
	for {
		var minute time.Time
		for _, cd := range cands {
			if !cd.next.IsZero() && cd.next.Before(start) && (minute.IsZero() || cd.next.Before(minute)) {
				minute = cd.next
			}
		}
		if minute.IsZero() {
			return nil
		}
		var due []int
		for _, cd := range cands {
			if cd.next.Equal(minute) {
				due = append(due, cd.entry)
				cd.next = c.entries[cd.entry].Schedule.Next(minute)
			}
		}
		minute = minute.UTC()
		fired, err := c.schedule(ctx, minute, due, true)
		if err != nil {
			return err
		}
		c.log.Debug("gworker: cron back-filled a minute", slog.Time("minute", minute), slog.Any("fired", fired))
		c.emit(CronEvent{Kind: CronBackfill, Now: c.clock.Now(), Minute: minute, Entries: c.identifiers(due), Fired: fired})
	}
}

// loop schedules each minute from next on, waiting for it on the clock.
func (c *cronRunner) loop(ctx context.Context, next time.Time) error {
	woke := false       // the last wait ended with the timer firing
	catchingUp := false // overdue minutes are being scheduled
	for ctx.Err() == nil {
		now := c.clock.Now()
		current := now.Truncate(time.Minute)
		if current.Before(next) {
			if woke {
				c.log.Warn("gworker: cron timer fired before its minute (was the clock set back?); waiting again",
					slog.Time("minute", next), slog.Time("now", now))
				c.emit(CronEvent{Kind: CronPrematureTimer, Now: now, Minute: next})
			}
			catchingUp = false
			if !c.sleep(ctx, next.Sub(now)) {
				return nil
			}
			woke = true
			continue
		}
		woke = false
		if current.After(next) && !catchingUp {
			catchingUp = true
			c.log.Warn("gworker: cron is late (was the process stalled or the clock set forward?); catching up every missed minute",
				slog.Time("minute", next), slog.Time("now", now), slog.Duration("behind", now.Sub(next)))
			c.emit(CronEvent{Kind: CronOverdueTimer, Now: now, Minute: next})
		}
		if err := c.tick(ctx, next); err != nil {
			return err
		}
		next = next.Add(time.Minute)
	}
	return nil
}

// tick schedules the entries due at minute.
func (c *cronRunner) tick(ctx context.Context, minute time.Time) error {
	var due []int
	for i, e := range c.entries {
		if e.Schedule.Matches(minute) {
			due = append(due, i)
		}
	}
	var ids, fired []string
	if len(due) > 0 {
		ids = c.identifiers(due)
		c.emit(CronEvent{Kind: CronSchedule, Now: c.clock.Now(), Minute: minute, Entries: ids})
		var err error
		if fired, err = c.schedule(ctx, minute, due, false); err != nil {
			return err
		}
		c.log.Debug("gworker: cron scheduled a minute", slog.Time("minute", minute), slog.Any("due", ids), slog.Any("fired", fired))
		c.emit(CronEvent{Kind: CronScheduled, Now: c.clock.Now(), Minute: minute, Entries: ids, Fired: fired})
	}
	c.emit(CronEvent{Kind: CronTick, Now: c.clock.Now(), Minute: minute, Entries: ids, Fired: fired})
	return nil
}

func (c *cronRunner) identifiers(entries []int) []string {
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = c.ids[e]
	}
	return ids
}

// cronSpec is one element of the schedule statement's JSON array.
type cronSpec struct {
	Identifier  string          `json:"identifier"`
	Task        string          `json:"task"`
	Payload     json.RawMessage `json:"payload"`
	Queue       *string         `json:"queue_name"`
	MaxAttempts *int            `json:"max_attempts"`
	JobKey      *string         `json:"job_key"`
	Priority    *int            `json:"priority"`
	JobKeyMode  *string         `json:"job_key_mode"`
}

// schedule adds the jobs of the entries due at minute, in one statement,
// for those whose last execution is before minute. It returns their
// identifiers.
func (c *cronRunner) schedule(ctx context.Context, minute time.Time, due []int, backfilled bool) ([]string, error) {
	ts := isoMinute(minute)
	specs := make([]cronSpec, len(due))
	for i, e := range due {
		j := &c.jobs[e]
		specs[i] = cronSpec{
			Identifier: j.identifier, Task: j.task, Payload: j.payload(ts, backfilled),
			Queue: j.queue, MaxAttempts: j.maxAttempts, JobKey: j.jobKey, Priority: j.priority, JobKeyMode: j.jobKeyMode,
		}
	}
	specs = c.hooks.beforeCronSchedule(ctx, minute, backfilled, specs)
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(specs); err != nil {
		return nil, fmt.Errorf("gworker: cron: encode jobs of %s: %w", ts, err)
	}
	ctx, cancel := context.WithTimeout(ctx, cronStatementTimeout)
	defer cancel()
	rows, err := c.db.Query(ctx, c.sql.schedule, minute, json.RawMessage(bytes.TrimSpace(body.Bytes())))
	if err != nil {
		return nil, fmt.Errorf("gworker: cron: schedule %s: %w", ts, err)
	}
	defer rows.Close()
	var fired []string
	for rows.Next() {
		var (
			id    string
			jobID *int64
		)
		if err := rows.Scan(&id, &jobID); err != nil {
			return nil, fmt.Errorf("gworker: cron: schedule %s: %w", ts, err)
		}
		fired = append(fired, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("gworker: cron: schedule %s: %w", ts, err)
	}
	return fired, nil
}

// ceilMinute rounds t up to a whole minute.
func ceilMinute(t time.Time) time.Time {
	m := t.Truncate(time.Minute)
	if m.Before(t) {
		m = m.Add(time.Minute)
	}
	return m
}
