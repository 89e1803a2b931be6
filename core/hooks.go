package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"
)

// This file holds hooks: functions called at the steps of a job's and a
// worker's life. Observers (Hooks.OnEvent) see typed events; interceptors
// steer jobs: BeforeJobRun, AroundJobRun and AfterJobRun around a run,
// BeforeSchedule and AroundAdd around adding jobs. A Plugin is a named set
// of hooks. When no hook is registered the worker's cost is a nil check.

// Hooks are functions called at the steps of a job's and a worker's life.
// Every field is optional; the zero value does nothing. Give them to a
// worker (WorkerOptions.Hooks, WorkerOptions.Plugins) or to a client
// (UtilsOptions.Hooks, UtilsOptions.Plugins); a client calls only
// BeforeSchedule, AroundAdd, BeforeRecover (SweepStaleWorkers) and OnEvent
// (for JobAdded).
//
// Hooks are called from many goroutines at once (each job runs on its
// own), so they must be safe for concurrent use, and they run on the path
// of the job or the add they hook, so they should be quick. A hook that
// panics is logged with its stack and never costs a job: each field says
// what happens then.
//
// With several plugins, hooks of the same kind run in registration order:
// WorkerOptions.Plugins in order, then WorkerOptions.Hooks. The first
// AroundJobRun or AroundAdd is the outermost.
type Hooks struct {
	// OnEvent observes every event: the Event types of this package
	// (WorkerStarted, JobStarted, JobCompleted, CronEvent, ...); use a type
	// switch. It is called synchronously, so it must not block.
	// A panic is logged and ignored.
	OnEvent func(ctx context.Context, e Event)

	// BeforeJobRun is called when a job's turn has come, before its
	// handler, with the handler's context (JobFromContext, the extensions
	// and the rest work). It decides:
	//
	//   - Continue(): run the handler (the zero Decision does too).
	//   - Skip(): do not run it; the job goes back to the queue untouched:
	//     the attempt the fetch counted is given back, and run_at, payload
	//     and last_error stay as they were. It is not deleted, and it is
	//     runnable again at once; this worker does not fetch again because
	//     of it (a notification, a poll or another job's completion does),
	//     so a hook that keeps skipping a job costs a fetch per such wake-up,
	//     and RunOnce does not return while such a job is runnable (it polls
	//     it again). To hold a job back for longer, use Fail (retried with
	//     backoff) or forbidden flags.
	//   - Fail(message): do not run it; the job fails with message as
	//     last_error, exactly as if its handler had returned that error: the
	//     attempt counts and it is retried with backoff, or fails for good
	//     at max attempts.
	//
	// The first hook that does not continue decides; later ones are not
	// called. A panic counts as Continue. AroundJobRun and AfterJobRun do
	// not run for a job that does not continue.
	BeforeJobRun func(ctx context.Context, job *Job) Decision

	// AroundJobRun wraps the handler (middleware): it calls run once, with
	// ctx or a context derived from it (a tracing span, say), and returns
	// its error or another one. Returning nil without calling run fails the
	// job with an error saying so, since the job was never done. A panic
	// before run was called runs the job without this hook; after, keeps
	// run's result.
	AroundJobRun func(ctx context.Context, job *Job, run func(context.Context) error) error

	// AfterJobRun is called after the handler (and AroundJobRun) with its
	// result, and returns the result to record: nil completes the job, an
	// error fails it (with the error's text as last_error; a *BatchFailure
	// keeps its retry payload; FailPermanently and RetryAfter steer it as
	// they do from a handler). Return err to keep the outcome. Each hook
	// gets the previous one's result. A job cancelled by Utils.CancelJob
	// fails for good whatever is returned; a job interrupted by shutdown
	// that ends with an error goes back to the queue. A panic keeps the
	// result the hook was given.
	AfterJobRun func(ctx context.Context, job *Job, err error) error

	// BeforeSchedule is called for each job about to be added, on every
	// path: Utils.AddJob, AddRawJob, AddJobs and AddBatchJob (with the
	// caller's context; inside a handler, UtilsFromContext's client is the
	// worker's and carries its hooks) and the cron runner. It may rewrite
	// job.Payload and job.Spec in place, and decides:
	//
	//   - Continue(): add the job as it now stands.
	//   - Skip(): do not add it. AddJob, AddRawJob and AddBatchJob return
	//     an error matching ErrAddSkipped; AddJobs leaves the job out of the
	//     statement and of its result; cron does not add the entry's job for
	//     that minute and does not record the minute as executed.
	//   - Fail(message): do not add it. The client call returns an
	//     *AddRejectedError and adds nothing (for AddJobs, none of the
	//     jobs); cron logs the message and does not add the entry's job.
	//
	// A panic counts as Continue with the job as it was before that hook.
	// A rewrite that cron cannot use (an invalid spec) is logged and
	// dropped.
	BeforeSchedule func(ctx context.Context, job *ScheduledJob) Decision

	// AroundAdd wraps each client call that adds jobs (AddJob, AddRawJob,
	// AddJobs, AddBatchJob; not cron): it calls add once, with ctx or a
	// context derived from it, and returns its error. BeforeSchedule runs
	// inside add, with the context given to add, over the jobs listed here.
	// Returning nil without calling add is reported to the caller as an
	// error. A panic before add was called adds without this hook; after,
	// keeps add's result.
	AroundAdd func(ctx context.Context, jobs []*ScheduledJob, add func(context.Context) error) error

	// BeforeRecover is called by a sweep of dead workers (a worker's
	// periodic sweep, or Utils.SweepStaleWorkers with the client's hooks)
	// for each job it is about to free, with the job as it stands, still
	// locked by the dead worker, and what the sweep knows. It decides, per
	// job, what the sweep's RecoveryAction would otherwise decide for all:
	//
	//   - RecoverByDefault(): the sweep's Action (the zero value does too).
	//   - RecoverReschedule(at): hand the job back with the attempt not
	//     counted, to run at at (the zero time: at once).
	//   - RecoverFailWithBackoff(): count the attempt as failed, with
	//     graphile-worker's backoff.
	//   - RecoverSkip(): leave the job locked; the next sweep asks again.
	//     Its named queue stays locked, and the dead worker stays listed.
	//
	// It runs inside the sweep's transaction, which holds the sweep lock
	// and the jobs' rows, so it must be quick and must not touch those jobs
	// itself. It is called for dry runs too (info.DryRun), whose decisions
	// are reported and rolled back. The first hook that does not return
	// RecoverByDefault decides; a panic counts as RecoverByDefault.
	BeforeRecover func(ctx context.Context, job *Job, info RecoveryInfo) RecoveryDecision
}

func (h Hooks) empty() bool {
	return h.OnEvent == nil && h.BeforeJobRun == nil && h.AroundJobRun == nil && h.AfterJobRun == nil &&
		h.BeforeSchedule == nil && h.AroundAdd == nil && h.BeforeRecover == nil
}

// Plugin is a named set of hooks, such as the ready-made ones in gworker's
// plugin directory. Hooks is called once, when the worker or client is
// created; Name identifies the plugin in logs.
type Plugin interface {
	Name() string
	Hooks() Hooks
}

// NewPlugin returns a Plugin with the given name and hooks.
func NewPlugin(name string, hooks Hooks) Plugin { return funcPlugin{name, hooks} }

type funcPlugin struct {
	name  string
	hooks Hooks
}

func (p funcPlugin) Name() string { return p.name }
func (p funcPlugin) Hooks() Hooks { return p.hooks }

// Decision is what BeforeJobRun and BeforeSchedule hooks return: Continue,
// Skip or Fail. The zero value continues.
type Decision struct {
	action  decisionAction
	message string
}

type decisionAction uint8

const (
	actionContinue decisionAction = iota
	actionSkip
	actionFail
)

// Continue lets the job run (BeforeJobRun) or be added (BeforeSchedule).
func Continue() Decision { return Decision{} }

// Skip returns the job to the queue untouched instead of running it
// (BeforeJobRun), or does not add it (BeforeSchedule). See Hooks.
func Skip() Decision { return Decision{action: actionSkip} }

// Fail fails the job with message instead of running it (BeforeJobRun), or
// refuses to add it (BeforeSchedule). See Hooks.
func Fail(message string) Decision { return Decision{action: actionFail, message: message} }

func (d Decision) String() string {
	switch d.action {
	case actionSkip:
		return "skip"
	case actionFail:
		return "fail: " + d.message
	}
	return "continue"
}

// AddSource says which path is adding a job.
type AddSource string

const (
	// AddFromClient: a Utils call outside a job handler.
	AddFromClient AddSource = "client"
	// AddFromHandler: a Utils call with a job handler's context.
	AddFromHandler AddSource = "handler"
	// AddFromCron: the cron runner.
	AddFromCron AddSource = "cron"
)

// ScheduledJob is a job about to be added, as BeforeSchedule and AroundAdd
// see it. BeforeSchedule may change Payload and Spec.
type ScheduledJob struct {
	// Task is the task identifier. Changing it has no effect.
	Task string
	// Payload is the job's payload as JSON text; nil means {}. It must stay
	// valid JSON.
	Payload json.RawMessage
	// Spec holds the job's settings. For cron jobs RunAt and Flags have no
	// effect (a cron job runs at its minute and has no flags), and
	// JobKeyMode is "", Replace or PreserveRunAt.
	Spec JobSpec
	// Source says which path adds the job.
	Source AddSource
	// Cron describes the cron entry when Source is AddFromCron; nil
	// otherwise.
	Cron *CronJobInfo
}

// CronJobInfo is the cron entry and minute a cron job is added for.
type CronJobInfo struct {
	Identifier string
	Minute     time.Time
	Backfilled bool
}

// ErrAddSkipped matches the error AddJob, AddRawJob and AddBatchJob return
// when a BeforeSchedule hook skipped the job: it was not added.
var ErrAddSkipped = errors.New("gworker: a BeforeSchedule hook skipped the job; it was not added")

// AddRejectedError is returned when a BeforeSchedule hook refused a job with
// Fail: nothing was added.
type AddRejectedError struct {
	Hook    string // the plugin's name, or "Hooks" for single hooks
	Task    string
	Field   string // for AddJobs, the refused job: "jobs[3]"
	Message string
}

func (e *AddRejectedError) Error() string {
	where := ""
	if e.Field != "" {
		where = " (" + e.Field + ")"
	}
	return fmt.Sprintf("gworker: add job %q%s: refused by BeforeSchedule hook of %s: %s", e.Task, where, e.Hook, e.Message)
}

// JobRejectedError is the failure of a job whose BeforeJobRun hook returned
// Fail: its Error is the hook's message, recorded as last_error.
type JobRejectedError struct {
	Hook    string
	Message string
}

func (e *JobRejectedError) Error() string { return e.Message }

// singleHooksName names WorkerOptions.Hooks and UtilsOptions.Hooks in logs.
const singleHooksName = "Hooks"

// named is one registered hook and the plugin it came from.
type named[F any] struct {
	name string
	fn   F
}

// hookSet is the hooks of a worker or client, by kind. A nil *hookSet has
// none; every method is safe on nil.
type hookSet struct {
	log         *slog.Logger
	observers   []named[func(context.Context, Event)]
	beforeRun   []named[func(context.Context, *Job) Decision]
	aroundRun   []named[func(context.Context, *Job, func(context.Context) error) error]
	afterRun    []named[func(context.Context, *Job, error) error]
	beforeSched []named[func(context.Context, *ScheduledJob) Decision]
	aroundAdds  []named[func(context.Context, []*ScheduledJob, func(context.Context) error) error]
	beforeRecov []named[func(context.Context, *Job, RecoveryInfo) RecoveryDecision]
}

// checkPlugins reports nil plugins, naming the field.
func checkPlugins(field string, plugins []Plugin) []error {
	var errs []error
	for i, p := range plugins {
		if p == nil {
			errs = append(errs, &ValidationError{Field: fmt.Sprintf("%s[%d]", field, i), Reason: "is nil"})
		}
	}
	return errs
}

// newHookSet collects the plugins' hooks and then single's; it returns nil
// when there are none. Nil plugins are skipped (options validation reports
// them).
func newHookSet(plugins []Plugin, single Hooks, log *slog.Logger) *hookSet {
	h := &hookSet{log: log}
	add := func(name string, k Hooks) {
		if k.OnEvent != nil {
			h.observers = append(h.observers, named[func(context.Context, Event)]{name, k.OnEvent})
		}
		if k.BeforeJobRun != nil {
			h.beforeRun = append(h.beforeRun, named[func(context.Context, *Job) Decision]{name, k.BeforeJobRun})
		}
		if k.AroundJobRun != nil {
			h.aroundRun = append(h.aroundRun, named[func(context.Context, *Job, func(context.Context) error) error]{name, k.AroundJobRun})
		}
		if k.AfterJobRun != nil {
			h.afterRun = append(h.afterRun, named[func(context.Context, *Job, error) error]{name, k.AfterJobRun})
		}
		if k.BeforeSchedule != nil {
			h.beforeSched = append(h.beforeSched, named[func(context.Context, *ScheduledJob) Decision]{name, k.BeforeSchedule})
		}
		if k.AroundAdd != nil {
			h.aroundAdds = append(h.aroundAdds, named[func(context.Context, []*ScheduledJob, func(context.Context) error) error]{name, k.AroundAdd})
		}
		if k.BeforeRecover != nil {
			h.beforeRecov = append(h.beforeRecov, named[func(context.Context, *Job, RecoveryInfo) RecoveryDecision]{name, k.BeforeRecover})
		}
	}
	found := false
	for _, p := range plugins {
		if p == nil {
			continue
		}
		k := p.Hooks()
		if !k.empty() {
			add(p.Name(), k)
			found = true
		}
	}
	if !single.empty() {
		add(singleHooksName, single)
		found = true
	}
	if !found {
		return nil
	}
	return h
}

// observing reports whether any observer is registered: emitters check it
// before building an event, so that no hooks cost no allocation.
func (h *hookSet) observing() bool { return h != nil && len(h.observers) > 0 }

// schedules reports whether adding jobs is hooked.
func (h *hookSet) schedules() bool {
	return h != nil && (len(h.beforeSched) > 0 || len(h.aroundAdds) > 0 || len(h.observers) > 0)
}

// guard runs f, turning a panic into a logged error; it reports whether f
// panicked.
func (h *hookSet) guard(plugin, hook string, f func()) (panicked bool) {
	defer func() {
		if p := recover(); p != nil {
			panicked = true
			h.log.Error("gworker: hook panicked; ignored", slog.String("plugin", plugin), slog.String("hook", hook),
				slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
		}
	}()
	f()
	return false
}

// emit calls every observer with e.
func (h *hookSet) emit(ctx context.Context, e Event) {
	if h == nil {
		return
	}
	for _, o := range h.observers {
		h.guard(o.name, "OnEvent", func() { o.fn(ctx, e) })
	}
}

// beforeJobRun asks the BeforeJobRun hooks; it returns the first decision
// that does not continue, and the hook's name.
func (h *hookSet) beforeJobRun(ctx context.Context, job *Job) (Decision, string) {
	for _, b := range h.beforeRun {
		var d Decision
		if h.guard(b.name, "BeforeJobRun", func() { d = b.fn(ctx, job) }) {
			continue
		}
		if d.action != actionContinue {
			return d, b.name
		}
	}
	return Decision{}, ""
}

// aroundJobRun runs inner wrapped by the AroundJobRun hooks.
func (h *hookSet) aroundJobRun(ctx context.Context, job *Job, inner func(context.Context) error) error {
	return wrap(h, h.aroundRun, middleware{hook: "AroundJobRun", next: "run", work: "running the job"}, ctx, inner,
		func(fn func(context.Context, *Job, func(context.Context) error) error, ctx context.Context, next func(context.Context) error) error {
			return fn(ctx, job, next)
		})
}

// afterJobRun passes err through the AfterJobRun hooks.
func (h *hookSet) afterJobRun(ctx context.Context, job *Job, err error) error {
	for _, a := range h.afterRun {
		out := err
		if !h.guard(a.name, "AfterJobRun", func() { out = a.fn(ctx, job, err) }) {
			err = out
		}
	}
	return err
}

// beforeSchedule passes job through the BeforeSchedule hooks. A hook that
// panics leaves the job as it was before it.
func (h *hookSet) beforeSchedule(ctx context.Context, job *ScheduledJob) (Decision, string) {
	for _, b := range h.beforeSched {
		before := *job
		before.Spec.Flags = append([]string(nil), job.Spec.Flags...)
		var d Decision
		if h.guard(b.name, "BeforeSchedule", func() { d = b.fn(ctx, job) }) {
			*job = before
			continue
		}
		if d.action != actionContinue {
			return d, b.name
		}
	}
	return Decision{}, ""
}

// aroundAdd runs add wrapped by the AroundAdd hooks.
func (h *hookSet) aroundAdd(ctx context.Context, jobs []*ScheduledJob, add func(context.Context) error) error {
	return wrap(h, h.aroundAdds, middleware{hook: "AroundAdd", next: "add", work: "adding the job"}, ctx, add,
		func(fn func(context.Context, []*ScheduledJob, func(context.Context) error) error, ctx context.Context, next func(context.Context) error) error {
			return fn(ctx, jobs, next)
		})
}

// middleware names a kind of wrapping hook in the errors wrap returns.
type middleware struct {
	hook string // the Hooks field, "AroundJobRun"
	next string // what its callback is called, "run"
	work string // what calling it does, "running the job"
}

// wrap runs inner inside the hooks hs, the first outermost; call gives a
// hook its arguments and next, which runs the rest of the chain. next runs
// at most once: a second call would repeat work that is done. A hook that
// panics before calling next is left out (the rest of the chain still
// runs), one that panics after keeps next's result, since the work
// happened; one that returns nil without calling next gets an error, since
// the work never happened.
func wrap[F any](h *hookSet, hs []named[F], m middleware, ctx context.Context, inner func(context.Context) error,
	call func(fn F, ctx context.Context, next func(context.Context) error) error) error {
	var from func(ctx context.Context, i int) error
	from = func(ctx context.Context, i int) error {
		if i == len(hs) {
			return inner(ctx)
		}
		hook := hs[i]
		called := false
		var innerErr, err error
		next := func(ctx context.Context) error {
			if called {
				return fmt.Errorf("gworker: %s called %s twice; the second call did nothing", m.hook, m.next)
			}
			called = true
			innerErr = from(ctx, i+1)
			return innerErr
		}
		if h.guard(hook.name, m.hook, func() { err = call(hook.fn, ctx, next) }) {
			if called {
				return innerErr
			}
			return from(ctx, i+1)
		}
		if !called && err == nil {
			return fmt.Errorf("gworker: %s hook of %s returned without %s", m.hook, hook.name, m.work)
		}
		return err
	}
	return from(ctx, 0)
}

// runSkipped is the result of a job a BeforeJobRun hook skipped; the runner
// returns the job to the queue untouched.
type runSkipped struct{ hook string }

func (e *runSkipped) Error() string { return "gworker: job skipped by BeforeJobRun hook of " + e.hook }

// runJob runs a job through the run hooks and its handler; it is what a
// job's goroutine calls.
func (w *Worker) runJob(ctx context.Context, job *Job) error {
	h := w.hooks
	if h == nil {
		return w.execute(ctx, job)
	}
	if len(h.beforeRun) > 0 {
		switch d, name := h.beforeJobRun(ctx, job); d.action {
		case actionSkip:
			return &runSkipped{hook: name}
		case actionFail:
			msg := d.message
			if msg == "" {
				msg = "gworker: job failed by BeforeJobRun hook of " + name
			}
			return &JobRejectedError{Hook: name, Message: msg}
		}
	}
	if h.observing() {
		h.emit(ctx, JobStarted{Job: job})
	}
	var err error
	if len(h.aroundRun) > 0 {
		err = h.aroundJobRun(ctx, job, func(ctx context.Context) error { return w.execute(ctx, job) })
	} else {
		err = w.execute(ctx, job)
	}
	if len(h.afterRun) > 0 {
		err = h.afterJobRun(ctx, job, err)
	}
	return err
}

// installHooks collects the worker's hooks and gives them to its client,
// so that jobs added from handlers go through BeforeSchedule too.
func (w *Worker) installHooks() {
	w.hooks = newHookSet(w.opts.Plugins, w.opts.Hooks, w.log)
	w.utils.hooks = w.hooks
}

// cronEvents returns the cron runner's event sink: the observers, or nil
// when nobody observes.
func (w *Worker) cronEvents() func(CronEvent) {
	if !w.hooks.observing() {
		return nil
	}
	h := w.hooks
	return func(e CronEvent) { h.emit(context.Background(), e) }
}

// eventCtx is the context observers get for a job's outcome: the job and
// worker values of its handler's context, never cancelled.
func (r *runner) eventCtx(job *Job) context.Context {
	return &handlerContext{Context: context.Background(), w: r.w, job: job}
}

// The emit* methods build events only when someone observes; the runner
// calls them at each step.

func (w *Worker) emitStarted(ctx context.Context, once bool) {
	if !w.hooks.observing() {
		return
	}
	tasks := make([]string, 0, len(w.tasks))
	for id := range w.tasks {
		tasks = append(tasks, id)
	}
	w.hooks.emit(ctx, WorkerStarted{WorkerID: w.id, Schema: w.opts.Schema, Concurrency: w.opts.Concurrency,
		Once: once, Tasks: tasks, Utils: w.utils})
}

func (w *Worker) emitStopped(ctx context.Context, err error) {
	if w.hooks.observing() {
		w.hooks.emit(context.WithoutCancel(ctx), WorkerStopped{WorkerID: w.id, Schema: w.opts.Schema, Err: err})
	}
}

func (r *runner) emitShutdown(ctx context.Context, fatal error) {
	if !r.w.hooks.observing() {
		return
	}
	e := WorkerShutdown{WorkerID: r.w.id, Running: len(r.active), Buffered: len(r.buffer), Err: fatal}
	switch {
	case fatal != nil:
		e.Reason = ShutdownFatal
	case ctx.Err() != nil:
		e.Reason, e.Err = ShutdownCancelled, context.Cause(ctx)
	default:
		e.Reason = ShutdownDrained
	}
	r.w.hooks.emit(context.WithoutCancel(ctx), e)
}

func (r *runner) emitFetchStarted(ctx context.Context, asked int) {
	if r.w.hooks.observing() {
		r.w.hooks.emit(ctx, FetchStarted{WorkerID: r.w.id, Asked: asked})
	}
}

func (r *runner) emitFetchFailed(ctx context.Context) {
	if r.w.hooks.observing() {
		r.w.hooks.emit(ctx, r.fetcher.failed)
	}
}

func (r *runner) emitFetched(ctx context.Context, asked int, jobs []*Job) {
	if r.w.hooks.observing() {
		r.w.hooks.emit(ctx, JobsFetched{WorkerID: r.w.id, Asked: asked, Jobs: jobs})
	}
}

func (r *runner) emitLocalQueue(e LocalQueueEvent) {
	if r.w.hooks.observing() {
		e.WorkerID = r.w.id
		r.w.hooks.emit(context.Background(), e)
	}
}

// emitOutcome reports what finish decided for a job: the event of its
// kind, and JobPermanentlyFailed after a final failure.
func (r *runner) emitOutcome(res result, kind outcomeKind, message string) {
	if !r.w.hooks.observing() {
		return
	}
	a := res.a
	ctx := r.eventCtx(a.job)
	var e Event
	switch {
	case a.cancelled != "":
		e = JobCancelled{Job: a.job, Reason: a.cancelled, Duration: res.dur}
	case kind == outcomeComplete:
		e = JobCompleted{Job: a.job, Duration: res.dur}
	case kind == outcomeReturn:
		e = JobInterrupted{Job: a.job, Err: res.err, Duration: res.dur, Abandoned: a.abandoned}
	case kind == outcomeRelease:
		hook := ""
		var s *runSkipped
		if errors.As(res.err, &s) {
			hook = s.hook
		}
		e = JobSkipped{Job: a.job, Hook: hook}
	default:
		st := steeringOf(res.err)
		if st.snooze {
			e = JobSnoozed{Job: a.job, Err: res.err, Delay: st.delay, Duration: res.dur}
			break
		}
		permanent := st.permanent || a.job.Attempts >= a.job.MaxAttempts
		r.w.hooks.emit(ctx, JobFailed{Job: a.job, Err: res.err, Message: message, Duration: res.dur, WillRetry: !permanent})
		if !permanent {
			return
		}
		e = JobPermanentlyFailed{Job: a.job, Err: res.err, Message: message}
	}
	r.w.hooks.emit(ctx, e)
}

// skipJob returns a job a BeforeJobRun hook skipped to the queue untouched.
func (r *runner) skipJob(res result) {
	var s *runSkipped
	errors.As(res.err, &s)
	r.w.jobLogger(res.a.job).Debug("gworker: job skipped by a hook; returned to the queue untouched", slog.String("plugin", s.hook))
	r.completer.add(outcome{job: res.a.job, kind: outcomeRelease})
	r.emitOutcome(res, outcomeRelease, "")
}

func isRunSkipped(err error) bool {
	_, ok := err.(*runSkipped)
	return ok
}

// emitCancelledWaiting reports a job CancelJob cancelled while it waited in
// the local queue.
func (r *runner) emitCancelledWaiting(job *Job, reason string) {
	if r.w.hooks.observing() {
		r.w.hooks.emit(r.eventCtx(job), JobCancelled{Job: job, Reason: reason})
	}
}

// emitReturned reports jobs the local queue handed back unstarted.
func (r *runner) emitReturned(change LocalQueueChange, jobs []*Job) {
	if r.w.hooks.observing() && len(jobs) > 0 {
		r.emitLocalQueue(LocalQueueEvent{Change: change, Jobs: jobs})
	}
}

// emitExpiring reports the local-queue jobs whose TTL is over at now,
// before they are handed back.
func (r *runner) emitExpiring(now time.Time, ttl time.Duration) {
	if !r.w.hooks.observing() {
		return
	}
	var jobs []*Job
	for _, b := range r.buffer {
		if now.Sub(b.at) >= ttl {
			jobs = append(jobs, b.job)
		}
	}
	r.emitReturned(LocalQueueTTLExpired, jobs)
}

// emitReleasing reports the local-queue jobs shutdown hands back.
func (r *runner) emitReleasing() {
	if !r.w.hooks.observing() || len(r.buffer) == 0 {
		return
	}
	jobs := make([]*Job, len(r.buffer))
	for i, b := range r.buffer {
		jobs[i] = b.job
	}
	r.emitReturned(LocalQueueReleased, jobs)
}
