package telemetry_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/internal/pgtest"
	"github.com/gworker/gworker/plugin/telemetry"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var quiet = slog.New(slog.DiscardHandler)

type Order struct {
	ID int `json:"id"`
}

func (Order) TaskIdentifier() string { return "order" }

// setup returns a database and a fresh, migrated schema.
func setup(t *testing.T) (context.Context, core.Database, string) {
	t.Helper()
	ctx := context.Background()
	db := pgxdriver.New(pgtest.Pool(t))
	schema := pgtest.Schema(t)
	u, err := core.NewUtils(db, core.UtilsOptions{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return ctx, db, schema
}

// tracer returns a tracer provider recording into a new SpanRecorder.
func tracer() (*sdktrace.TracerProvider, *tracetest.SpanRecorder) {
	sr := tracetest.NewSpanRecorder()
	return sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr)), sr
}

func span(t *testing.T, sr *tracetest.SpanRecorder, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	var names []string
	for _, s := range sr.Ended() {
		if s.Name() == name {
			return s
		}
		names = append(names, s.Name())
	}
	t.Fatalf("no span %q among %v", name, names)
	return nil
}

func attr(s sdktrace.ReadOnlySpan, key string) attribute.Value {
	for _, a := range s.Attributes() {
		if string(a.Key) == key {
			return a.Value
		}
	}
	return attribute.Value{}
}

func TestRunSpanLinksToAddSpanAcrossProcesses(t *testing.T) {
	t.Parallel()
	ctx, db, schema := setup(t)

	// Process A adds the job within a request's span.
	tpA, srA := tracer()
	telA, err := telemetry.New(telemetry.Options{TracerProvider: tpA, MeterProvider: metricnoop.NewMeterProvider()})
	if err != nil {
		t.Fatal(err)
	}
	client, err := core.NewUtils(db, core.UtilsOptions{Schema: schema, Plugins: []core.Plugin{telA}})
	if err != nil {
		t.Fatal(err)
	}
	reqCtx, req := tpA.Tracer("app").Start(ctx, "POST /orders")
	job, err := client.AddJob(reqCtx, Order{ID: 42}, nil)
	req.End()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(job.Payload), `"_gworker_trace":{"traceparent":"00-`) {
		t.Fatalf("payload %s carries no trace context", job.Payload)
	}
	add := span(t, srA, "gworker add order")
	if add.SpanKind() != trace.SpanKindProducer || add.Parent().SpanID() != req.SpanContext().SpanID() ||
		attr(add, "gworker.job.id").AsInt64() != job.ID {
		t.Fatalf("add span: kind %v, parent %v, job id %v; want a producer child of the request with the job's id",
			add.SpanKind(), add.Parent().SpanID(), attr(add, "gworker.job.id"))
	}

	// Process B, with its own tracer provider, runs it; the handler adds a
	// job of its own, and a third job fails.
	tpB, srB := tracer()
	telB, err := telemetry.New(telemetry.Options{TracerProvider: tpB, MeterProvider: metricnoop.NewMeterProvider()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.AddRawJob(ctx, "fails", nil, &core.JobSpec{MaxAttempts: 1}); err != nil {
		t.Fatal(err)
	}
	var decoded Order
	w, err := core.NewWorker(core.WorkerOptions{Database: db, Schema: schema, Concurrency: 1, Logger: quiet, Plugins: []core.Plugin{telB},
		Tasks: []core.Task{
			core.NewTask(func(ctx context.Context, _ *core.Job, o Order) error {
				decoded = o // the trace key does not disturb typed decoding
				_, charge := tpB.Tracer("app").Start(ctx, "charge card")
				charge.End()
				_, err := core.UtilsFromContext(ctx).AddRawJob(ctx, "receipt", map[string]int{"order": o.ID}, nil)
				return err
			}),
			core.RawTask("receipt", func(context.Context, *core.Job) error { return nil }),
			core.RawTask("fails", func(context.Context, *core.Job) error { return errors.New("card declined") }),
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if decoded.ID != 42 {
		t.Fatalf("handler decoded %+v", decoded)
	}

	run := span(t, srB, "gworker run order")
	if run.SpanKind() != trace.SpanKindConsumer || len(run.Links()) != 1 {
		t.Fatalf("run span kind %v with %d links, want a consumer with 1 link", run.SpanKind(), len(run.Links()))
	}
	link := run.Links()[0].SpanContext
	if link.TraceID() != add.SpanContext().TraceID() || link.SpanID() != add.SpanContext().SpanID() {
		t.Fatalf("run span links to %v/%v, want the add span %v/%v", link.TraceID(), link.SpanID(),
			add.SpanContext().TraceID(), add.SpanContext().SpanID())
	}
	if run.SpanContext().TraceID() == add.SpanContext().TraceID() || run.Parent().IsValid() {
		t.Error("the run span should start a trace of its own, linked rather than parented")
	}
	if attr(run, "gworker.job.id").AsInt64() != job.ID || attr(run, "gworker.task").AsString() != "order" ||
		attr(run, "gworker.job.attempt").AsInt64() != 1 || attr(run, "gworker.worker.id").AsString() != w.ID() {
		t.Errorf("run span attributes %v", run.Attributes())
	}
	if run.Status().Code == codes.Error {
		t.Errorf("successful run has status %v", run.Status())
	}
	if charge := span(t, srB, "charge card"); charge.Parent().SpanID() != run.SpanContext().SpanID() {
		t.Error("the handler's own span is not a child of the run span")
	}
	// In process: the handler's add is a child of the run span, and the
	// receipt's run links to it.
	addReceipt := span(t, srB, "gworker add receipt")
	if addReceipt.Parent().SpanID() != run.SpanContext().SpanID() || attr(addReceipt, "gworker.add.source").AsString() != "handler" {
		t.Errorf("receipt add span: parent %v, source %v", addReceipt.Parent().SpanID(), attr(addReceipt, "gworker.add.source"))
	}
	runReceipt := span(t, srB, "gworker run receipt")
	if len(runReceipt.Links()) != 1 || runReceipt.Links()[0].SpanContext.SpanID() != addReceipt.SpanContext().SpanID() {
		t.Errorf("receipt run span links %v, want the receipt's add span", runReceipt.Links())
	}
	failed := span(t, srB, "gworker run fails")
	if failed.Status().Code != codes.Error || failed.Status().Description != "card declined" || len(failed.Events()) == 0 ||
		failed.Events()[0].Name != "exception" {
		t.Errorf("failed run span: status %v, events %v", failed.Status(), failed.Events())
	}
}

func TestTraceContextInjection(t *testing.T) {
	t.Parallel()
	tp, _ := tracer()
	tel, err := telemetry.New(telemetry.Options{TracerProvider: tp, MeterProvider: metricnoop.NewMeterProvider()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, s := tp.Tracer("test").Start(context.Background(), "add")
	defer s.End()
	want := fmt.Sprintf("00-%s-%s-01", s.SpanContext().TraceID(), s.SpanContext().SpanID())
	before := tel.Hooks().BeforeSchedule
	for _, c := range []struct {
		payload string
		carries bool
		others  map[string]any // members besides the trace key
	}{
		{"", true, map[string]any{}},
		{"{}", true, map[string]any{}},
		{` { "a" : 1, "b": [1, 2] } `, true, map[string]any{"a": 1.0, "b": []any{1.0, 2.0}}},
		{`{"a":1,"_gworker_trace":{"traceparent":"00-stale"}}`, true, map[string]any{"a": 1.0}},
		{`[{"item":1}]`, false, nil}, // a batch job's array cannot carry it
		{`"text"`, false, nil},
	} {
		j := &core.ScheduledJob{Task: "t", Payload: json.RawMessage(c.payload)}
		if d := before(ctx, j); d.String() != "continue" {
			t.Errorf("%s: decision %v", c.payload, d)
		}
		if !c.carries {
			if string(j.Payload) != c.payload {
				t.Errorf("%s: rewritten to %s, want unchanged", c.payload, j.Payload)
			}
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(j.Payload, &m); err != nil {
			t.Fatalf("%q: rewritten payload %s is not JSON: %v", c.payload, j.Payload, err)
		}
		tr, _ := m[telemetry.TraceKey].(map[string]any)
		if tr["traceparent"] != want {
			t.Errorf("%q -> %s: traceparent %v, want %s", c.payload, j.Payload, tr["traceparent"], want)
		}
		delete(m, telemetry.TraceKey)
		if fmt.Sprint(m) != fmt.Sprint(c.others) {
			t.Errorf("%q -> %s: other members %v, want %v", c.payload, j.Payload, m, c.others)
		}
	}
	// Without a span there is nothing to carry.
	j := &core.ScheduledJob{Task: "t", Payload: json.RawMessage(`{"a":1}`)}
	before(context.Background(), j)
	if string(j.Payload) != `{"a":1}` {
		t.Errorf("payload rewritten without a span: %s", j.Payload)
	}
}

// metrics collects rm and returns the metrics by name.
func metrics(t *testing.T, r *sdkmetric.ManualReader) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

// sum adds the points of a counter whose attributes include all of kv.
func sum(t *testing.T, data metricdata.Aggregation, kv ...attribute.KeyValue) int64 {
	t.Helper()
	s, ok := data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("metric data %T, want an int64 sum", data)
	}
	var n int64
	for _, p := range s.DataPoints {
		if matches(p.Attributes, kv) {
			n += p.Value
		}
	}
	return n
}

func matches(set attribute.Set, kv []attribute.KeyValue) bool {
	for _, want := range kv {
		if v, ok := set.Value(want.Key); !ok || v != want.Value {
			return false
		}
	}
	return true
}

func gauge(t *testing.T, data metricdata.Aggregation, schema string) (int64, bool) {
	t.Helper()
	g, ok := data.(metricdata.Gauge[int64])
	if !ok {
		return 0, false
	}
	for _, p := range g.DataPoints {
		if v, ok := p.Attributes.Value("gworker.schema"); ok && v.AsString() == schema {
			return p.Value, true
		}
	}
	return 0, false
}

func TestMetricsCountJobsAndQueueDepth(t *testing.T) {
	t.Parallel()
	ctx, db, schema := setup(t)
	reader := sdkmetric.NewManualReader()
	tel, err := telemetry.New(telemetry.Options{TracerProvider: tracenoop.NewTracerProvider(),
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Close()
	client, err := core.NewUtils(db, core.UtilsOptions{Schema: schema, Plugins: []core.Plugin{tel}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.AddJobs(ctx, []core.NewJob{
		{Identifier: "ok", Spec: core.JobSpec{Priority: -1}}, // runs first: the probe
		{Identifier: "ok"},
		{Identifier: "bad", Spec: core.JobSpec{MaxAttempts: 2}},
		{Identifier: "bad", Spec: core.JobSpec{MaxAttempts: 1}},
		{Identifier: "other"}, {Identifier: "other"}, // no worker runs them: they stay available
		{Identifier: "later", Spec: core.JobSpec{RunAt: time.Now().Add(time.Hour)}}, // not available
		{Identifier: "snooze", Spec: core.JobSpec{Priority: 1}},                     // runs last, then waits an hour
	})
	if err != nil {
		t.Fatal(err)
	}
	var depth, cached []int64
	probed := false
	w, err := core.NewWorker(core.WorkerOptions{Database: db, Schema: schema, Concurrency: 1, Logger: quiet, Plugins: []core.Plugin{tel},
		Tasks: []core.Task{
			core.RawTask("ok", func(ctx context.Context, _ *core.Job) error {
				if probed {
					return nil
				}
				probed = true
				n, ok := gauge(t, metrics(t, reader)["gworker.jobs.available"], schema)
				depth = append(depth, n)
				if !ok {
					return errors.New("no gauge point while the worker runs")
				}
				// A job added now is not counted until the interval passed.
				if _, err := client.AddRawJob(ctx, "other", nil, nil); err != nil {
					return err
				}
				n, _ = gauge(t, metrics(t, reader)["gworker.jobs.available"], schema)
				cached = append(cached, n)
				return nil
			}),
			core.RawTask("bad", func(context.Context, *core.Job) error { return errors.New("nope") }),
			core.RawTask("snooze", func(context.Context, *core.Job) error { return core.RetryAfter(time.Hour, errors.New("later")) }),
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	// While the probe ran: 1 ok, 2 bad, 2 other and the snooze job were
	// available.
	if !slices.Equal(depth, []int64{6}) || !slices.Equal(cached, []int64{6}) {
		t.Fatalf("queue depth %v then %v, want 6 both times (the second from the cache)", depth, cached)
	}
	m := metrics(t, reader)
	task := func(s string) attribute.KeyValue { return attribute.String("gworker.task", s) }
	for _, c := range []struct {
		metric string
		kv     []attribute.KeyValue
		want   int64
	}{
		{"gworker.jobs.started", []attribute.KeyValue{task("ok")}, 2},
		{"gworker.jobs.started", []attribute.KeyValue{task("bad")}, 2},
		{"gworker.jobs.completed", []attribute.KeyValue{task("ok")}, 2},
		{"gworker.jobs.completed", []attribute.KeyValue{task("bad")}, 0},
		// A snoozed job started, and neither completed nor failed.
		{"gworker.jobs.started", []attribute.KeyValue{task("snooze")}, 1},
		{"gworker.jobs.completed", []attribute.KeyValue{task("snooze")}, 0},
		{"gworker.jobs.failed", []attribute.KeyValue{task("snooze")}, 0},
		{"gworker.jobs.failed", []attribute.KeyValue{task("bad"), attribute.Bool("gworker.job.will_retry", true)}, 1},
		{"gworker.jobs.failed", []attribute.KeyValue{task("bad"), attribute.Bool("gworker.job.will_retry", false)}, 1},
		{"gworker.jobs.added", []attribute.KeyValue{attribute.String("gworker.add.source", "client")}, 8},
		{"gworker.jobs.added", []attribute.KeyValue{attribute.String("gworker.add.source", "handler")}, 1},
		{"gworker.jobs.added", []attribute.KeyValue{task("other")}, 3},
	} {
		if got := sum(t, m[c.metric], c.kv...); got != c.want {
			t.Errorf("%s %v = %d, want %d", c.metric, c.kv, got, c.want)
		}
	}
	h, ok := m["gworker.job.duration"].(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("gworker.job.duration is %T", m["gworker.job.duration"])
	}
	counts := map[string]uint64{}
	for _, p := range h.DataPoints {
		tk, _ := p.Attributes.Value("gworker.task")
		oc, _ := p.Attributes.Value("gworker.job.outcome")
		counts[tk.AsString()+"/"+oc.AsString()] += p.Count
	}
	if counts["ok/success"] != 2 || counts["bad/failure"] != 2 || counts["snooze/snoozed"] != 1 || len(counts) != 3 {
		t.Errorf("duration counts %v, want ok/success 2, bad/failure 2 and snooze/snoozed 1", counts)
	}
	// The worker stopped: its schema is no longer observed.
	if _, ok := gauge(t, m["gworker.jobs.available"], schema); ok {
		t.Error("queue depth still reported after the worker stopped")
	}
}

// A failed fetch counts in gworker.fetch.errors, and nothing else does.
func TestMetricsCountFetchErrors(t *testing.T) {
	t.Parallel()
	reader := sdkmetric.NewManualReader()
	tel, err := telemetry.New(telemetry.Options{TracerProvider: tracenoop.NewTracerProvider(),
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)), QueueDepthInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Close()
	onEvent := tel.Hooks().OnEvent
	ctx := context.Background()
	onEvent(ctx, core.FetchStarted{WorkerID: "w", Asked: 4})
	onEvent(ctx, core.FetchFailed{WorkerID: "w", Asked: 4, Err: errors.New("connection refused"), Failures: 1, RetryIn: time.Second})
	onEvent(ctx, core.FetchStarted{WorkerID: "w", Asked: 4})
	onEvent(ctx, core.FetchFailed{WorkerID: "w", Asked: 4, Err: errors.New("connection refused"), Failures: 2, RetryIn: 2 * time.Second})
	onEvent(ctx, core.FetchStarted{WorkerID: "w", Asked: 4})
	onEvent(ctx, core.JobsFetched{WorkerID: "w", Asked: 4})
	if got := sum(t, metrics(t, reader)["gworker.fetch.errors"]); got != 2 {
		t.Fatalf("gworker.fetch.errors = %d, want 2", got)
	}
}
