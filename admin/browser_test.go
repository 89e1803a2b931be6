package admin_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/gworker/gworker/admin"
	"github.com/gworker/gworker/core"
)

// envChromium names the Chrome or Chromium binary the browser tests drive;
// unset, they look for chromium, chromium-browser and google-chrome.
const envChromium = "GWORKER_CHROMIUM"

// findChromium fails the test, never skips it, when there is no browser.
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(envChromium); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatalf("no Chromium found for the admin page's browser tests: install Debian's chromium package " +
		"(apt-get install chromium; make test does it when run as root), or set " + envChromium + " to a Chrome or Chromium binary")
	return ""
}

// browse starts a headless Chromium whose every request carries auth's
// Authorization header, and saves a screenshot of the page if the test
// fails.
func browse(t *testing.T, user, password string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(findChromium(t)),
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancelAlloc)
	t.Cleanup(cancel)
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
	if err := chromedp.Do(ctx, chromedp.Action[chromedp.Void](func(ctx context.Context, _ *chromedp.Target) (chromedp.Void, error) {
		if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
			return chromedp.Void{}, err
		}
		_, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": auth}})
		return chromedp.Void{}, err
	})); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	// Cleanups run last first: this one, before the browser goes.
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		dir := os.Getenv("GWORKER_ARTIFACTS_DIR")
		if dir == "" {
			dir = filepath.Join(os.TempDir(), "gworker-admin-artifacts")
		}
		_ = os.MkdirAll(dir, 0o755)
		sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
		defer scancel()
		png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Logf("screenshot on failure: %v", err)
			return
		}
		name := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+".png")
		if err := os.WriteFile(name, png, 0o644); err != nil {
			t.Logf("screenshot on failure: %v", err)
			return
		}
		t.Logf("screenshot of the page at failure: %s", name)
	})
	return ctx
}

// run runs browser steps with a deadline, failing the test with what was
// being done.
func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		s, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(sel)))
		// The page's live updates may replace the node between its lookup
		// and the read: look it up again.
		if err != nil && strings.Contains(err.Error(), "No node with given id found") && tctx.Err() == nil {
			continue
		}
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(tctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// click clicks the element sel finds in one evaluation: the page's live
// updates may replace a node between a lookup and a click.
func click(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).click()`, sel))
}

// The whole path of an operator: the overview, the failed jobs of one
// task, one of them, retry, and the job running and then gone, all seen
// through the page's own live updates.
func TestBrowserRetryAFailedJobAndWatchItRunAndVanish(t *testing.T) {
	t.Parallel()
	b := setup(t, admin.Options{RefreshInterval: 200 * time.Millisecond})
	var failed []int64
	for i := range 3 {
		j := b.addJob(t, "send_email", map[string]any{"to": fmt.Sprintf("user%d@example.com", i)}, &core.JobSpec{MaxAttempts: 1})
		b.failJob(t, j.ID, "SMTP timeout")
		failed = append(failed, j.ID)
	}
	other := b.addJob(t, "resize_image", nil, nil)
	b.failJob(t, other.ID, "out of memory")
	ctx := browse(t, operatorUser, operatorPassword)

	run(t, ctx, "open the overview", chromedp.Navigate(b.base+"/"), chromedp.WaitVisible(chromedp.CSS(".cards")))
	run(t, ctx, "click the failed jobs of send_email",
		click(`a[href$="/jobs?task=send_email&state=failed"]`),
		chromedp.WaitVisible(chromedp.CSS("table.jobs")))
	rows := eval[[]string](t, ctx, `Array.from(document.querySelectorAll("table.jobs tbody tr td:nth-child(2)")).map(td => td.textContent.trim())`)
	if len(rows) != 3 {
		t.Fatalf("the filtered list shows jobs %v, want the 3 failed send_email jobs", rows)
	}
	if loc := eval[string](t, ctx, "location.search"); !strings.Contains(loc, "state=failed") || !strings.Contains(loc, "task=send_email") {
		t.Fatalf("the filter is not in the URL: %q", loc)
	}
	target := failed[1]
	run(t, ctx, "open one job",
		click(fmt.Sprintf(`a[href$="/jobs/%d"]`, target)),
		chromedp.WaitVisible(chromedp.CSS("#action-retry")))
	if s := text(t, ctx, "#last-error"); s != "SMTP timeout" {
		t.Fatalf("last error shown: %q", s)
	}
	run(t, ctx, "retry it", click("#action-retry"), chromedp.WaitVisible(chromedp.CSS(".notice")))
	if s := text(t, ctx, ".jobstate"); !strings.Contains(s, "ready") {
		t.Fatalf("after retry the job is %q, want ready", s)
	}

	// A worker runs it; its handler waits until the page has shown it
	// running.
	release := make(chan struct{})
	w, err := core.NewWorker(core.WorkerOptions{Database: b.db, Schema: b.schema, Concurrency: 1, PollInterval: 50 * time.Millisecond,
		Tasks: []core.Task{core.RawTask("send_email", func(ctx context.Context, _ *core.Job) error {
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})}})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(b.ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	t.Cleanup(func() {
		stop()
		<-done
	})
	run(t, ctx, "see it running", chromedp.WaitVisible(chromedp.CSS(".jobstate .badge.st-running")))
	close(release)
	run(t, ctx, "see it gone", chromedp.WaitVisible(chromedp.CSS("#job-gone")))
	if _, err := b.utils.GetJob(b.ctx, target); err == nil {
		t.Fatal("the job is still in the table")
	}
	if n, _ := b.utils.CountJobs(b.ctx, core.JobFilter{States: []core.JobState{core.JobStateFailed}}); n != 3 {
		t.Fatalf("%d failed jobs, want the other 3", n)
	}
}

func TestBrowserBulkRetryByFilterShowsThePreviewCount(t *testing.T) {
	t.Parallel()
	b := setup(t, admin.Options{})
	for i := range 7 {
		j := b.addJob(t, "mailer", map[string]any{"i": i}, nil)
		b.failJob(t, j.ID, "smtp down")
	}
	for i := range 3 {
		j := b.addJob(t, "billing", map[string]any{"i": i}, nil)
		b.failJob(t, j.ID, "card declined")
	}
	ctx := browse(t, operatorUser, operatorPassword)
	run(t, ctx, "filter the failed mailer jobs", chromedp.Navigate(b.base+"/jobs"), chromedp.WaitVisible(chromedp.CSS("form.filters")),
		chromedp.Click(chromedp.CSS(`input[name=state][value=failed]`)),
		chromedp.SetValue(chromedp.CSS(`form.filters input[name=task]`), "mailer"),
		chromedp.Submit(chromedp.CSS(`form.filters`)),
		// An element of the filtered page only: the old page has the rest.
		chromedp.WaitReady(chromedp.CSS(`form.matching input[name=task][value=mailer]`)))
	run(t, ctx, "preview a retry of everything matching",
		chromedp.SetValue(chromedp.CSS("#matching-action"), "retry"),
		chromedp.Click(chromedp.CSS("#matching-preview")),
		chromedp.WaitVisible(chromedp.CSS("#preview")))
	if n := eval[string](t, ctx, `document.getElementById("preview-count").textContent`); n != "7" {
		t.Fatalf("the preview counts %s jobs, want 7", n)
	}
	run(t, ctx, "confirm", chromedp.Click(chromedp.CSS("#confirm-box")), chromedp.Click(chromedp.CSS("#confirm-button")),
		chromedp.WaitVisible(chromedp.CSS("#bulk-result")))
	if s := text(t, ctx, "#bulk-result"); !strings.Contains(s, "7 matched, 7 changed") {
		t.Fatalf("result: %q", s)
	}
	if n, _ := b.utils.CountJobs(b.ctx, core.JobFilter{States: []core.JobState{core.JobStateFailed}}); n != 3 {
		t.Fatalf("%d failed jobs, want billing's 3", n)
	}
}

func TestBrowserViewerSeesNoWriteControlsAndTheAPIRefusesItsWrites(t *testing.T) {
	t.Parallel()
	b := setup(t, admin.Options{})
	j := b.addJob(t, "t", nil, nil)
	b.failJob(t, j.ID, "x")
	ctx := browse(t, viewerUser, viewerPassword)
	for _, p := range []string{"/", "/jobs", fmt.Sprintf("/jobs/%d", j.ID), "/maintenance"} {
		run(t, ctx, "open "+p, chromedp.Navigate(b.base+p), chromedp.WaitVisible(chromedp.CSS("main h1")))
		if n := eval[int](t, ctx, `document.querySelectorAll("form[method=post], button[type=submit]:not(form.filters button)").length`); n != 0 {
			t.Errorf("%s shows %d write controls to a viewer", p, n)
		}
	}
	status := eval[int](t, ctx, fmt.Sprintf(`fetch(%q, {method: "POST"}).then(r => r.status)`, fmt.Sprintf("%s/api/v1/jobs/%d/retry", b.base, j.ID)))
	if status != 403 {
		t.Fatalf("the viewer's retry through the API: %d, want 403", status)
	}
	got, err := b.utils.GetJob(b.ctx, j.ID)
	if err != nil || got.Attempts != got.MaxAttempts {
		t.Fatalf("the job changed: %+v %v", got, err)
	}
}

func TestBrowserPageUnderAPrefix(t *testing.T) {
	t.Parallel()
	b := setup(t, admin.Options{Prefix: "/ops/admin", RefreshInterval: 200 * time.Millisecond})
	b.addJob(t, "t", nil, nil)
	ctx := browse(t, operatorUser, operatorPassword)
	run(t, ctx, "open the overview", chromedp.Navigate(b.base+"/"), chromedp.WaitVisible(chromedp.CSS("#live-toggle")))
	// The script ran (it shows the toggle) and the stylesheet applied,
	// both fetched under the prefix.
	if bg := eval[string](t, ctx, `getComputedStyle(document.querySelector("header.top")).backgroundColor`); bg != "rgb(24, 32, 46)" {
		t.Fatalf("the stylesheet did not apply: header background %q", bg)
	}
	run(t, ctx, "go to the jobs", click(`header nav a[href="/ops/admin/jobs"]`), chromedp.WaitVisible(chromedp.CSS("table.jobs")))
	if p := eval[string](t, ctx, "location.pathname"); p != "/ops/admin/jobs" {
		t.Fatalf("at %q", p)
	}
	run(t, ctx, "pause the live updates", click("#live-toggle"))
	if s := text(t, ctx, "#live-status"); s != "paused" {
		t.Fatalf("live status %q after pausing", s)
	}
	if s := text(t, ctx, "#live-toggle"); s != "Resume updates" {
		t.Fatalf("toggle says %q", s)
	}
}
