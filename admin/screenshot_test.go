package admin_test

import (
	"bytes"
	"context"
	"math"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"

	"github.com/gworker/gworker/admin"
	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/internal/pgtest"
	"github.com/gworker/gworker/internal/testkit"
)

// envScreenshot names where TestBrowserOverviewScreenshot writes its PNG;
// the README's docs/admin.png is made with
//
//	GWORKER_ADMIN_SCREENSHOT=$PWD/docs/admin.png go test -run Screenshot ./admin/
const envScreenshot = "GWORKER_ADMIN_SCREENSHOT"

// The overview of a busy schema renders in a browser: counts, both charts
// and the tables. The test also makes the README's screenshot.
func TestBrowserOverviewScreenshot(t *testing.T) {
	t.Parallel()
	b := setup(t, admin.Options{})
	tasks := []string{"send_email", "resize_image", "sync_crm", "generate_invoice"}
	for i := range 60 {
		task := tasks[i%len(tasks)]
		spec := &core.JobSpec{}
		if i%3 == 0 {
			spec.QueueName = "mail"
		}
		if i%7 == 0 {
			spec.RunAt = time.Now().Add(time.Hour)
		}
		j := b.addJob(t, task, map[string]any{"n": i}, spec)
		switch {
		case i%11 == 0:
			b.failJob(t, j.ID, "SMTP 451: try again later")
		case i%5 == 0:
			if _, err := b.utils.RescheduleJobs(b.ctx, []int64{j.ID}, core.RescheduleOptions{Attempts: ptr(2)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Two workers' heartbeats and an hour of their counts, as they would
	// have written them.
	pool := pgtest.Pool(t)
	q := pgx.Identifier{b.schema}.Sanitize()
	workers := []string{"pool-3f9a1c2b7d4e5f6a70", "pool-8b2d4f6a1c3e5b7d90"}
	for _, w := range workers {
		b.registerWorker(t, testkit.RegisteredWorker{ID: w, Hostname: "app-1", PID: 4242, Version: "v0.9.0", Concurrency: 16,
			HeartbeatInterval: 30 * time.Second, Tasks: tasks})
	}
	for m := 0; m <= 60; m++ {
		for wi, w := range workers {
			for ti, task := range tasks {
				rate := (6 - float64(ti)*1.2) * (1 + 0.5*math.Sin(float64(m)/7+float64(ti)+float64(wi)))
				done := int64(rate * 60 * (1 + 0.3*float64(wi)))
				failed := int64(0)
				if ti == 0 && m%9 == 0 {
					failed = 12
				}
				if _, err := pool.Exec(b.ctx, `insert into `+q+`._private_gworker_throughput (bucket, worker_id, task_identifier, completed, failed)
values (date_trunc('minute', now()) - $1::int * interval '1 minute', $2, $3, $4, $5)`, 60-m, w, task, done, failed); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if r := b.do(t, "POST", "/api/v1/jobs/actions/retry", `{"filter":{"state":["failed"],"task":["send_email"]},"dry_run":true}`, asOperator); r.status != 200 {
		t.Fatal(r.body)
	}
	b.do(t, "POST", "/api/v1/maintenance/cleanup", `{}`, asOperator)

	ctx := browse(t, operatorUser, operatorPassword)
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.EmulateViewport(1280, 1000), chromedp.Navigate(b.base+"/"),
		chromedp.WaitVisible(chromedp.CSS("figure.chart polyline"))); err != nil {
		t.Fatal(err)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("figure.chart polyline").length`); n != len(tasks)+len(workers) {
		t.Fatalf("%d lines drawn, want %d", n, len(tasks)+len(workers))
	}
	png, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatal("the screenshot is not a PNG")
	}
	if out := os.Getenv(envScreenshot); out != "" {
		if err := os.WriteFile(out, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", out, len(png))
	}
}

func ptr[T any](v T) *T { return &v }
