package admin_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gworker/gworker/admin"
	"github.com/gworker/gworker/core"
)

// Queue and task names, payloads, errors and reasons come from whoever can
// add jobs, so the page treats them as hostile.
func TestHostileStringsAreEscapedEverywhere(t *testing.T) {
	t.Parallel()
	b := setup(t, admin.Options{})
	const (
		script = `<script>alert(1)</script>`
		attr   = `"'><img src=x onerror=alert(2)>`
	)
	task := "x" + script
	queue := "q" + attr
	long := strings.Repeat("<b>10k</b>", 1000) // 10,000 characters
	j := b.addJob(t, task, map[string]any{"html": script + attr, "long": long}, &core.JobSpec{QueueName: queue, JobKey: attr, Flags: []string{script}})
	b.failJob(t, j.ID, script+attr+long)
	r := b.do(t, "POST", fmt.Sprintf("/jobs/%d/reschedule", j.ID), "run_at=1m&reason="+url.QueryEscape(script), asOperator)
	want(t, "reschedule", r, http.StatusSeeOther)
	r = b.do(t, "POST", "/api/v1/jobs/actions/fail", `{"filter":{"task":[`+quoteJSON(task)+`]},"confirm":true,"reason":`+quoteJSON(script+attr)+`}`, asOperator)
	want(t, "fail with a hostile reason", r, http.StatusOK)

	q := url.Values{"task": {task}, "queue": {queue}, "error": {script}, "key": {attr}}.Encode()
	pages := []string{"/", "/jobs", "/jobs?" + q, fmt.Sprintf("/jobs/%d", j.ID), "/queues", "/tasks", "/workers", "/audit",
		"/jobs/confirm?action=retry&" + q, "/jobs/new"}
	for _, p := range pages {
		r := b.do(t, "GET", p, "", asOperator)
		want(t, p, r, http.StatusOK)
		for _, raw := range []string{"<script>alert", "<img src=x", "onerror=alert(2)>", "<b>10k"} {
			if strings.Contains(r.body, raw) {
				t.Errorf("%s contains %q unescaped", p, raw)
			}
		}
	}
	r = b.do(t, "GET", fmt.Sprintf("/jobs/%d", j.ID), "", asOperator)
	if !strings.Contains(r.body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the job page does not show the reason, escaped")
	}
	k := b.addJob(t, "t", nil, nil)
	b.failJob(t, k.ID, long)
	r = b.do(t, "GET", fmt.Sprintf("/jobs/%d", k.ID), "", asOperator)
	if !strings.Contains(r.body, strings.Repeat("&lt;b&gt;10k&lt;/b&gt;", 1000)) {
		t.Errorf("the job page does not show the whole 10k-character error, escaped")
	}
	// The API's JSON escapes < and > too, so no browser takes it for HTML.
	for _, p := range []string{fmt.Sprintf("/api/v1/jobs/%d", j.ID), "/api/v1/jobs?" + q, "/api/v1/stats", "/api/v1/queues", "/api/v1/audit"} {
		r := b.do(t, "GET", p, "", asViewer)
		want(t, p, r, http.StatusOK)
		if strings.Contains(r.body, "<script") || strings.Contains(r.body, "<img") {
			t.Errorf("%s has raw markup: %.200s", p, r.body)
		}
	}
	// The filter's own echo (the form fields) is escaped as attributes.
	r = b.do(t, "GET", "/jobs?"+q, "", asViewer)
	if !strings.Contains(r.body, `value="q&#34;&#39;&gt;&lt;img`) {
		t.Errorf("the queue field is not escaped as an attribute")
	}
}

func quoteJSON(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func TestNULCharactersAreRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, admin.Options{})
	j := b.addJob(t, "t", nil, nil)
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/api/v1/jobs?task=a%00b", ""},
		{"GET", "/jobs?error=%00", ""},
		{"POST", "/api/v1/jobs", `{"task":"a\u0000b"}`},
		{"POST", "/api/v1/jobs", `{"task":"t","payload":{"k":"a\u0000b"}}`},
		{"POST", fmt.Sprintf("/api/v1/jobs/%d/fail", j.ID), `{"reason":"a\u0000b"}`},
		{"POST", "/api/v1/jobs/actions/retry", `{"filter":{"key":"a\u0000"},"confirm":true}`},
		{"POST", "/api/v1/jobs/actions/retry", `{"filter":{"payload":{"k":"\u0000"}},"dry_run":true}`},
		{"POST", fmt.Sprintf("/jobs/%d/fail", j.ID), "reason=a%00b"},
		{"POST", "/jobs/new", "task=a%00b"},
		{"POST", "/api/v1/maintenance/force-unlock", `{"worker_ids":["a\u0000"]}`},
	} {
		r := b.do(t, tc.method, tc.path, tc.body, asOperator)
		want(t, tc.method+" "+tc.path+" "+tc.body, r, http.StatusBadRequest)
		if !strings.Contains(r.body, "NUL") {
			t.Errorf("%s %s: the answer does not name the NUL: %s", tc.method, tc.path, r.body)
		}
	}
	got, err := b.utils.GetJob(b.ctx, j.ID)
	if err != nil || got.LastError != nil {
		t.Fatalf("the job changed: %+v %v", got, err)
	}
}

// Workers add what they finished to their heartbeats; the page draws it.
func TestThroughputChartShowsWhatWorkersFinished(t *testing.T) {
	t.Parallel()
	b := setup(t, admin.Options{})
	for i := range 30 {
		b.addJob(t, "resize_image", map[string]any{"i": i}, nil)
	}
	for i := range 5 {
		b.addJob(t, "flaky", map[string]any{"i": i}, &core.JobSpec{MaxAttempts: 1})
	}
	w, err := core.NewWorker(core.WorkerOptions{Database: b.db, Schema: b.schema, Concurrency: 4, PollInterval: 50 * time.Millisecond,
		Recovery: core.RecoveryOptions{HeartbeatInterval: 100 * time.Millisecond},
		Tasks: []core.Task{
			core.RawTask("resize_image", func(context.Context, *core.Job) error { return nil }),
			core.RawTask("flaky", func(context.Context, *core.Job) error { return fmt.Errorf("flaky failed") }),
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(b.ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	type point struct {
		Worker, Task      string
		Completed, Failed int64
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var tp struct{ Points []point }
		b.do(t, "GET", "/api/v1/throughput", "", asViewer).json(t, &tp)
		sum := map[string][2]int64{}
		for _, p := range tp.Points {
			if p.Worker != w.ID() {
				t.Fatalf("a point of worker %q, want %q", p.Worker, w.ID())
			}
			s := sum[p.Task]
			sum[p.Task] = [2]int64{s[0] + p.Completed, s[1] + p.Failed}
		}
		if sum["resize_image"] == [2]int64{30, 0} && sum["flaky"] == [2]int64{0, 5} {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("throughput counts = %v, want resize_image 30 completed and flaky 5 failed", sum)
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-b.ctx.Done():
			t.Fatal(b.ctx.Err())
		}
	}
	r := b.do(t, "GET", "/", "", asViewer)
	for _, s := range []string{"<svg", "<polyline", "<title>resize_image</title>", "<title>flaky</title>", "<title>" + w.ID() + "</title>"} {
		if !strings.Contains(r.body, s) {
			t.Errorf("the overview lacks %q", s)
		}
	}
}
