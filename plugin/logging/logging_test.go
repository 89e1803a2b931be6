package logging_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/internal/pgtest"
	"github.com/gworker/gworker/internal/testkit"
	"github.com/gworker/gworker/plugin/logging"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// records decodes the JSON lines the worker's goroutines wrote to buf so
// far.
func records(t *testing.T, buf *testkit.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestLogsEveryStepWithStructuredFields(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgxdriver.New(pgtest.Pool(t))
	schema := pgtest.Schema(t)
	buf := &testkit.Buffer{}
	plugin := logging.New(logging.Options{Logger: slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})

	utils, err := core.NewUtils(db, core.UtilsOptions{Schema: schema, Plugins: []core.Plugin{plugin}})
	if err != nil {
		t.Fatal(err)
	}
	if err := utils.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	ok, err := utils.AddRawJob(ctx, "ok", nil, &core.JobSpec{QueueName: "mail"})
	if err != nil {
		t.Fatal(err)
	}
	bad, err := utils.AddRawJob(ctx, "bad", nil, &core.JobSpec{MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	w, err := core.NewWorker(core.WorkerOptions{Database: db, Schema: schema, Concurrency: 2,
		Logger:  slog.New(slog.DiscardHandler),
		Plugins: []core.Plugin{plugin},
		Tasks: []core.Task{
			core.RawTask("ok", func(context.Context, *core.Job) error { time.Sleep(time.Millisecond); return nil }),
			core.RawTask("bad", func(context.Context, *core.Job) error { return errors.New("smtp: 550 mailbox unavailable") }),
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}

	byMsg := map[string][]map[string]any{}
	for _, r := range records(t, buf) {
		byMsg[r["msg"].(string)] = append(byMsg[r["msg"].(string)], r)
	}
	one := func(msg string) map[string]any {
		t.Helper()
		if len(byMsg[msg]) != 1 {
			t.Fatalf("%d records %q, want 1; all: %v", len(byMsg[msg]), msg, byMsg)
		}
		return byMsg[msg][0]
	}
	// want checks fields; a nil value only asks for the key's presence.
	want := func(r map[string]any, fields map[string]any) {
		t.Helper()
		for k, v := range fields {
			got, has := r[k]
			if !has || (v != nil && got != v) {
				t.Errorf("record %q: %s = %v (present %v), want %v", r["msg"], k, got, has, v)
			}
		}
	}
	worker := w.ID()
	want(one("gworker: worker started"), map[string]any{"level": "INFO", "event": "worker:start", "worker": worker,
		"schema": schema, "concurrency": 2.0, "once": true, "tasks": nil})
	for _, r := range byMsg["gworker: job added"] {
		want(r, map[string]any{"level": "DEBUG", "event": "job:added", "source": "client", "job_id": nil, "run_at": nil})
	}
	if n := len(byMsg["gworker: job added"]); n != 2 {
		t.Errorf("%d job added records, want 2", n)
	}
	for _, r := range byMsg["gworker: job started"] {
		want(r, map[string]any{"level": "INFO", "event": "job:start", "worker": worker, "attempts": 1.0})
	}
	done := one("gworker: job completed")
	want(done, map[string]any{"level": "INFO", "event": "job:success", "worker": worker, "job_id": float64(ok.ID),
		"task": "ok", "queue": "mail", "attempts": 1.0, "max_attempts": 25.0})
	if d, _ := done["duration"].(float64); d < float64(time.Millisecond) {
		t.Errorf("duration %v, want at least the handler's 1ms (in ns)", done["duration"])
	}
	want(one("gworker: job failed at its last attempt"), map[string]any{"level": "WARN", "event": "job:error",
		"job_id": float64(bad.ID), "task": "bad", "error": "smtp: 550 mailbox unavailable", "will_retry": false, "max_attempts": 1.0})
	want(one("gworker: job permanently failed"), map[string]any{"level": "ERROR", "event": "job:failed", "job_id": float64(bad.ID)})
	want(one("gworker: worker shutting down"), map[string]any{"event": "worker:shutdown", "reason": "drained"})
	want(one("gworker: worker stopped"), map[string]any{"event": "worker:stop", "worker": worker})
	if _, has := done["queue"]; !has {
		t.Error("a queued job's record has no queue")
	}
	if _, has := one("gworker: job permanently failed")["queue"]; has {
		t.Error("a job without a queue has a queue field")
	}
}

func TestRoutineLevelAndDisabledLevels(t *testing.T) {
	t.Parallel()
	buf := &testkit.Buffer{}
	p := logging.New(logging.Options{Logger: slog.New(slog.NewJSONHandler(buf, nil)), JobLevel: slog.LevelDebug})
	h := p.Hooks()
	job := &core.Job{ID: 7, TaskIdentifier: "t", Attempts: 1, MaxAttempts: 3}
	ctx := context.Background()
	h.OnEvent(ctx, core.JobStarted{Job: job})                                          // routine: now Debug, below Info
	h.OnEvent(ctx, core.JobFailed{Job: job, Message: "x", WillRetry: true})            // Warn
	h.OnEvent(ctx, core.CronEvent{Kind: core.CronError, Err: errors.New("db down")})   // Error
	h.OnEvent(ctx, core.LocalQueueEvent{Change: core.RefetchDelayStarted, Delay: 1e6}) // Debug
	recs := records(t, buf)
	if len(recs) != 2 || recs[0]["event"] != "job:error" || recs[1]["event"] != "cron:error" || recs[1]["error"] != "db down" {
		t.Fatalf("records %v, want the failure and the cron error only", recs)
	}
	if p.Name() != "logging" {
		t.Errorf("name %q", p.Name())
	}
}

// A handler's RetryAfter is logged as a snooze at the routine level, with
// the delay it asked for and its reason, not as a failure.
func TestLogsSnoozeWithItsDelayAndReason(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgxdriver.New(pgtest.Pool(t))
	schema := pgtest.Schema(t)
	buf := &testkit.Buffer{}
	plugin := logging.New(logging.Options{Logger: slog.New(slog.NewJSONHandler(buf, nil))})
	w, err := core.NewWorker(core.WorkerOptions{Database: db, Schema: schema,
		Logger:  slog.New(slog.DiscardHandler),
		Plugins: []core.Plugin{plugin},
		Tasks: []core.Task{core.RawTask("later", func(context.Context, *core.Job) error {
			return core.RetryAfter(time.Hour, errors.New("rate limited"))
		})}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Utils().Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	job, err := w.Utils().AddRawJob(ctx, "later", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	var snoozed []map[string]any
	for _, r := range records(t, buf) {
		if r["event"] == "job:error" || r["event"] == "job:failed" {
			t.Errorf("a snooze logged as a failure: %v", r)
		}
		if r["event"] == "job:snoozed" {
			snoozed = append(snoozed, r)
		}
	}
	if len(snoozed) != 1 {
		t.Fatalf("%d job:snoozed records, want 1; all:\n%s", len(snoozed), buf.String())
	}
	r := snoozed[0]
	for k, v := range map[string]any{"level": "INFO", "msg": "gworker: job snoozed; it runs again later",
		"job_id": float64(job.ID), "task": "later", "delay": float64(time.Hour), "error": "rate limited"} {
		if r[k] != v {
			t.Errorf("snooze record: %s = %v, want %v; record %v", k, r[k], v, r)
		}
	}
}

// Fetches are logged at Debug, a failed one with its error, how many
// failed in a row and the backoff.
func TestLogsFetchesAndFetchFailuresAtDebug(t *testing.T) {
	t.Parallel()
	buf := &testkit.Buffer{}
	h := logging.New(logging.Options{Logger: slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}).Hooks()
	ctx := context.Background()
	h.OnEvent(ctx, core.FetchStarted{WorkerID: "w1", Asked: 8})
	h.OnEvent(ctx, core.FetchFailed{WorkerID: "w1", Asked: 8, Err: errors.New("connection refused"), Failures: 3, RetryIn: 400 * time.Millisecond})
	recs := records(t, buf)
	if len(recs) != 2 {
		t.Fatalf("records %v, want the start and the failure", recs)
	}
	for k, v := range map[string]any{"level": "DEBUG", "msg": "gworker: fetching jobs", "event": "worker:getJob:start", "worker": "w1", "asked": 8.0} {
		if recs[0][k] != v {
			t.Errorf("start record: %s = %v, want %v", k, recs[0][k], v)
		}
	}
	for k, v := range map[string]any{"level": "DEBUG", "msg": "gworker: fetching jobs failed", "event": "worker:getJob:error", "worker": "w1",
		"asked": 8.0, "error": "connection refused", "failures": 3.0, "retry_in": float64(400 * time.Millisecond)} {
		if recs[1][k] != v {
			t.Errorf("failure record: %s = %v, want %v", k, recs[1][k], v)
		}
	}
}
