package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/gworker/gworker/core"
)

// TraceKey is the payload key that carries the trace context of the span
// that added a job: an object of the propagator's fields, for W3C Trace
// Context {"traceparent": "00-...", "tracestate": "..."}.
const TraceKey = "_gworker_trace"

// ScopeName is the instrumentation scope of the plugin's tracer and meter.
const ScopeName = "github.com/gworker/gworker/plugin/telemetry"

// DefaultQueueDepthInterval is how old a queue-depth count may be before a
// collection counts again.
const DefaultQueueDepthInterval = 15 * time.Second

// queueDepthTimeout bounds one count of available jobs.
const queueDepthTimeout = 5 * time.Second

// Options configures New. The zero value uses the global providers and
// W3C Trace Context.
type Options struct {
	// TracerProvider makes the tracer; nil means otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
	// MeterProvider makes the meter; nil means otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
	// Propagator writes and reads the payload's TraceKey; nil means
	// propagation.TraceContext{}. Workers and clients of one system must
	// agree on it.
	Propagator propagation.TextMapPropagator
	// QueueDepthInterval is how old the gworker.jobs.available count may
	// be: a collection within it reuses the last count. 0 means
	// DefaultQueueDepthInterval; negative turns the gauge off.
	QueueDepthInterval time.Duration
}

// Plugin traces and measures gworker. It is a core.Plugin: give the same
// value to workers and clients. Create it with New.
type Plugin struct {
	tracer   trace.Tracer
	prop     propagation.TextMapPropagator
	interval time.Duration

	started, completed, failed, added metric.Int64Counter
	fetchErrors                       metric.Int64Counter
	duration                          metric.Float64Histogram
	depth                             metric.Int64ObservableGauge
	reg                               metric.Registration

	mu     sync.Mutex
	queues map[string]*queueDepth // by schema
	tasks  sync.Map               // task identifier -> metric.MeasurementOption
}

// queueDepth is the cached count of one schema's available jobs.
type queueDepth struct {
	utils   *core.Utils
	workers int // running workers on the schema
	mu      sync.Mutex
	at      time.Time
	n       int64
	ok      bool
}

// New returns the plugin, with its instruments created.
func New(opts Options) (*Plugin, error) {
	tp, mp, prop := opts.TracerProvider, opts.MeterProvider, opts.Propagator
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if prop == nil {
		prop = propagation.TraceContext{}
	}
	p := &Plugin{tracer: tp.Tracer(ScopeName), prop: prop, interval: opts.QueueDepthInterval, queues: map[string]*queueDepth{}}
	if p.interval == 0 {
		p.interval = DefaultQueueDepthInterval
	}
	meter := mp.Meter(ScopeName)
	var errs []error
	counter := func(name, desc string) metric.Int64Counter {
		c, err := meter.Int64Counter(name, metric.WithUnit("{job}"), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	p.started = counter("gworker.jobs.started", "Jobs whose handler started.")
	p.completed = counter("gworker.jobs.completed", "Jobs whose handler succeeded.")
	p.failed = counter("gworker.jobs.failed", "Job attempts that failed; gworker.job.will_retry tells retries from final failures.")
	p.added = counter("gworker.jobs.added", "Jobs added through a client with the plugin.")
	var err error
	p.fetchErrors, err = meter.Int64Counter("gworker.fetch.errors", metric.WithUnit("{error}"),
		metric.WithDescription("Fetches of jobs that failed: the database could not be reached or refused the statement."))
	errs = append(errs, err)
	p.duration, err = meter.Float64Histogram("gworker.job.duration", metric.WithUnit("s"),
		metric.WithDescription("How long job handlers ran, by task and outcome."),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600))
	errs = append(errs, err)
	if p.interval > 0 {
		p.depth, err = meter.Int64ObservableGauge("gworker.jobs.available", metric.WithUnit("{job}"),
			metric.WithDescription("Jobs that could run now (unlocked, attempts left, run_at reached), by schema."))
		errs = append(errs, err)
		if err == nil {
			p.reg, err = meter.RegisterCallback(p.observe, p.depth)
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("gworker telemetry: create instruments: %w", err)
	}
	return p, nil
}

// Close stops observing the queue depth. Spans and counters keep working.
func (p *Plugin) Close() error {
	if p.reg != nil {
		return p.reg.Unregister()
	}
	return nil
}

// Name implements core.Plugin.
func (p *Plugin) Name() string { return "telemetry" }

// Hooks implements core.Plugin.
func (p *Plugin) Hooks() core.Hooks {
	return core.Hooks{
		OnEvent:        p.onEvent,
		AroundJobRun:   p.aroundJobRun,
		BeforeSchedule: p.beforeSchedule,
		AroundAdd:      p.aroundAdd,
	}
}

var (
	systemAttr      = attribute.String("messaging.system", "gworker")
	processAttr     = attribute.String("messaging.operation.type", "process")
	sendAttr        = attribute.String("messaging.operation.type", "send")
	addedByAttr     = attribute.String("gworker.link", "added_by")
	keyBytes        = []byte(`"` + TraceKey + `"`)
	successAttr     = attribute.String("gworker.job.outcome", "success")
	failureAttr     = attribute.String("gworker.job.outcome", "failure")
	snoozedAttr     = attribute.String("gworker.job.outcome", "snoozed")
	interruptedAttr = attribute.String("gworker.job.outcome", "interrupted")
	cancelledAttr   = attribute.String("gworker.job.outcome", "cancelled")
	taskKey         = attribute.Key("gworker.task")
	retryKey        = attribute.Key("gworker.job.will_retry")
	sourceKey       = attribute.Key("gworker.add.source")
	schemaKey       = attribute.Key("gworker.schema")
	jobIDKey        = attribute.Key("gworker.job.id")
	singleAddKey    = singleAdd{}
)

type singleAdd struct{}

// aroundJobRun runs the job in a consumer span linked to the span that
// added it.
func (p *Plugin) aroundJobRun(ctx context.Context, job *core.Job, run func(context.Context) error) error {
	attrs := []attribute.KeyValue{
		systemAttr, processAttr,
		taskKey.String(job.TaskIdentifier),
		jobIDKey.Int64(job.ID),
		attribute.Int("gworker.job.attempt", job.Attempts),
		attribute.Int("gworker.job.max_attempts", job.MaxAttempts),
		attribute.Int("gworker.job.priority", job.Priority),
		attribute.String("gworker.worker.id", job.LockedBy),
	}
	if job.QueueName != "" {
		attrs = append(attrs, attribute.String("gworker.queue", job.QueueName))
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...)}
	if sc := p.extract(job.Payload); sc.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{addedByAttr}}))
	}
	ctx, span := p.tracer.Start(ctx, "gworker run "+job.TaskIdentifier, opts...)
	defer span.End()
	err := run(ctx)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	return err
}

// aroundAdd runs a client add in a producer span; beforeSchedule puts its
// context into the payloads.
func (p *Plugin) aroundAdd(ctx context.Context, jobs []*core.ScheduledJob, add func(context.Context) error) error {
	name := "gworker add"
	attrs := []attribute.KeyValue{systemAttr, sendAttr}
	if len(jobs) > 0 {
		same := true
		for _, j := range jobs[1:] {
			same = same && j.Task == jobs[0].Task
		}
		if same {
			name += " " + jobs[0].Task
			attrs = append(attrs, taskKey.String(jobs[0].Task))
		}
		attrs = append(attrs, sourceKey.String(string(jobs[0].Source)))
	}
	if len(jobs) != 1 {
		attrs = append(attrs, attribute.Int("gworker.jobs.count", len(jobs)))
	} else {
		ctx = context.WithValue(ctx, singleAddKey, true)
	}
	ctx, span := p.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
	defer span.End()
	err := add(ctx)
	switch {
	case errors.Is(err, core.ErrAddSkipped):
		span.SetAttributes(attribute.Bool("gworker.add.skipped", true))
	case err != nil:
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	return err
}

// beforeSchedule writes the current span's context into the payload.
func (p *Plugin) beforeSchedule(ctx context.Context, job *core.ScheduledJob) core.Decision {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return core.Continue()
	}
	carrier := propagation.MapCarrier{}
	p.prop.Inject(ctx, carrier)
	if len(carrier) == 0 {
		return core.Continue()
	}
	if out, ok := injectTrace(job.Payload, carrier); ok {
		job.Payload = out
	}
	return core.Continue()
}

// injectTrace sets TraceKey in a JSON object payload (nil is {}); it
// reports false for other payloads, such as a batch job's array.
func injectTrace(payload json.RawMessage, carrier propagation.MapCarrier) (json.RawMessage, bool) {
	body := bytes.TrimSpace(payload)
	if len(body) == 0 {
		body = []byte("{}")
	}
	if body[0] != '{' {
		return payload, false
	}
	value, err := json.Marshal(map[string]string(carrier))
	if err != nil {
		return payload, false
	}
	if bytes.Contains(body, keyBytes) {
		// Present already (a payload copied from another job): replace it.
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			return payload, false
		}
		m[TraceKey] = value
		out, err := json.Marshal(m)
		return out, err == nil
	}
	rest := bytes.TrimSpace(body[1:])
	out := make([]byte, 0, len(body)+len(keyBytes)+len(value)+2)
	out = append(out, '{')
	out = append(out, keyBytes...)
	out = append(out, ':')
	out = append(out, value...)
	if len(rest) > 0 && rest[0] != '}' {
		out = append(out, ',')
	}
	return append(out, rest...), true
}

// extract reads the span context a payload carries, if any.
func (p *Plugin) extract(payload json.RawMessage) trace.SpanContext {
	if !bytes.Contains(payload, keyBytes) {
		return trace.SpanContext{}
	}
	var carrier struct {
		Trace map[string]string `json:"_gworker_trace"`
	}
	if json.Unmarshal(payload, &carrier) != nil || len(carrier.Trace) == 0 {
		return trace.SpanContext{}
	}
	ctx := p.prop.Extract(context.Background(), propagation.MapCarrier(carrier.Trace))
	return trace.SpanContextFromContext(ctx)
}

// taskOpt returns the measurement option of a task's attribute set.
func (p *Plugin) taskOpt(task string) metric.MeasurementOption {
	if o, ok := p.tasks.Load(task); ok {
		return o.(metric.MeasurementOption)
	}
	o := metric.WithAttributeSet(attribute.NewSet(taskKey.String(task)))
	p.tasks.Store(task, o)
	return o
}

func (p *Plugin) onEvent(ctx context.Context, e core.Event) {
	switch e := e.(type) {
	case core.JobStarted:
		p.started.Add(ctx, 1, p.taskOpt(e.Job.TaskIdentifier))
	case core.JobCompleted:
		p.completed.Add(ctx, 1, p.taskOpt(e.Job.TaskIdentifier))
		p.duration.Record(ctx, e.Duration.Seconds(), metric.WithAttributes(taskKey.String(e.Job.TaskIdentifier), successAttr))
	case core.JobFailed:
		p.failed.Add(ctx, 1, metric.WithAttributes(taskKey.String(e.Job.TaskIdentifier), retryKey.Bool(e.WillRetry)))
		var rejected *core.JobRejectedError
		if !errors.As(e.Err, &rejected) { // a hook refused it: the handler did not run
			p.duration.Record(ctx, e.Duration.Seconds(), metric.WithAttributes(taskKey.String(e.Job.TaskIdentifier), failureAttr))
		}
	case core.JobSnoozed:
		p.duration.Record(ctx, e.Duration.Seconds(), metric.WithAttributes(taskKey.String(e.Job.TaskIdentifier), snoozedAttr))
	case core.JobInterrupted:
		p.duration.Record(ctx, e.Duration.Seconds(), metric.WithAttributes(taskKey.String(e.Job.TaskIdentifier), interruptedAttr))
	case core.JobCancelled:
		if e.Duration > 0 { // it ran: cancelled before it started, it has no run time
			p.duration.Record(ctx, e.Duration.Seconds(), metric.WithAttributes(taskKey.String(e.Job.TaskIdentifier), cancelledAttr))
		}
	case core.JobAdded:
		p.added.Add(ctx, 1, metric.WithAttributes(taskKey.String(e.Job.TaskIdentifier), sourceKey.String(string(e.Source))))
		if ctx.Value(singleAddKey) != nil {
			trace.SpanFromContext(ctx).SetAttributes(jobIDKey.Int64(e.Job.ID))
		}
	case core.FetchFailed:
		p.fetchErrors.Add(ctx, 1)
	case core.WorkerStarted:
		p.watch(e.Schema, e.Utils)
	case core.WorkerStopped:
		p.unwatch(e.Schema)
	}
}

// watch counts the schema's available jobs while a worker runs on it.
func (p *Plugin) watch(schema string, u *core.Utils) {
	if p.depth == nil || u == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.queues[schema]
	if q == nil {
		q = &queueDepth{utils: u}
		p.queues[schema] = q
	}
	q.workers++
}

func (p *Plugin) unwatch(schema string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if q := p.queues[schema]; q != nil {
		if q.workers--; q.workers <= 0 {
			delete(p.queues, schema)
		}
	}
}

// observe reports each watched schema's queue depth, counting again when
// the last count is older than the interval.
func (p *Plugin) observe(ctx context.Context, o metric.Observer) error {
	p.mu.Lock()
	qs := make(map[string]*queueDepth, len(p.queues))
	for s, q := range p.queues {
		qs[s] = q
	}
	p.mu.Unlock()
	for schema, q := range qs {
		q.mu.Lock()
		if !q.ok || time.Since(q.at) >= p.interval {
			cctx, cancel := context.WithTimeout(ctx, queueDepthTimeout)
			n, err := q.utils.CountAvailableJobs(cctx)
			cancel()
			if err != nil {
				otel.Handle(err)
			} else {
				q.n, q.at, q.ok = n, time.Now(), true
			}
		}
		n, ok := q.n, q.ok
		q.mu.Unlock()
		if ok {
			o.ObserveInt64(p.depth, n, metric.WithAttributes(schemaKey.String(schema)))
		}
	}
	return nil
}
