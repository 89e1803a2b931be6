package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gworker/gworker/admin"
	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/internal/testkit"
)

func TestNewHandlerRequiresAnAuthenticator(t *testing.T) {
	t.Parallel()
	u, err := core.NewUtils(nopDB{}, core.UtilsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for name, opts := range map[string]admin.Options{
		"no authenticator":   {},
		"empty password":     {Auth: admin.Basic(admin.BasicUser{Name: "a", Role: admin.RoleOperator})},
		"no role":            {Auth: admin.Basic(admin.BasicUser{Name: "a", Password: "p"})},
		"short token":        {Auth: admin.Bearer(admin.BearerToken{Name: "ci", Token: "short", Role: admin.RoleViewer})},
		"nil func":           {Auth: admin.AuthFunc(nil)},
		"no-auth, bad role":  {Auth: admin.NoAuth("root")},
		"relative prefix":    {Auth: admin.NoAuth(admin.RoleViewer), Prefix: "admin"},
		"bad trusted origin": {Auth: admin.NoAuth(admin.RoleViewer), TrustedOrigins: []string{"not an origin"}},
		"bad crontab":        {Auth: admin.NoAuth(admin.RoleViewer), Crontab: "* * * nope"},
		"negative threshold": {Auth: admin.NoAuth(admin.RoleViewer), StaleThreshold: -time.Second},
		"negative refresh":   {Auth: admin.NoAuth(admin.RoleViewer), RefreshInterval: -time.Second},
	} {
		if _, err := admin.NewHandler(u, opts); err == nil {
			t.Errorf("%s: NewHandler accepted %+v", name, opts)
		}
	}
	if _, err := admin.NewHandler(u, admin.Options{Auth: admin.NoAuth(admin.RoleViewer)}); err != nil {
		t.Fatalf("explicit NoAuth: %v", err)
	}
}

// nopDB is a Database for tests that never reach it.
type nopDB struct{ core.Database }

func TestEveryReadEndpointAnswersJSON(t *testing.T) {
	t.Parallel()
	b := setup(t, admin.Options{Crontab: "0 4 * * * nightly_report"})
	j := b.addJob(t, "send_email", map[string]any{"to": "ada@example.com"}, &core.JobSpec{QueueName: "mail"})
	for _, tc := range []struct {
		path string
		keys []string
	}{
		{"/api/v1/me", []string{"name", "role", "read_only", "can_write"}},
		{"/api/v1/stats", []string{"exact", "total", "by_state", "by_task", "by_queue"}},
		{"/api/v1/jobs", []string{"jobs", "next", "prev"}},
		{fmt.Sprintf("/api/v1/jobs/%d", j.ID), testkit.JobJSONKeys},
		{"/api/v1/queues", []string{"queues"}},
		{"/api/v1/tasks", []string{"tasks"}},
		{"/api/v1/workers", []string{"workers", "other_lockers", "stale_threshold_seconds"}},
		{"/api/v1/cron", []string{"cron"}},
		{"/api/v1/throughput", []string{"now", "since", "bucket_seconds", "points"}},
		{"/api/v1/audit", []string{"entries"}},
	} {
		r := b.do(t, "GET", tc.path, "", asViewer)
		want(t, tc.path, r, http.StatusOK)
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s: Content-Type %q", tc.path, ct)
		}
		var m map[string]json.RawMessage
		r.json(t, &m)
		for _, k := range tc.keys {
			if _, ok := m[k]; !ok {
				t.Errorf("%s: no %q in %s", tc.path, k, r.body)
			}
		}
	}
	var st struct {
		Exact   bool
		Total   int64
		ByState map[string]int64 `json:"by_state"`
	}
	b.do(t, "GET", "/api/v1/stats", "", asViewer).json(t, &st)
	if !st.Exact || st.Total != 1 || st.ByState["ready"] != 1 {
		t.Errorf("stats = %+v", st)
	}
	var cron struct {
		Cron []struct {
			Identifier string
			NextRun    *string `json:"next_run"`
		}
	}
	b.do(t, "GET", "/api/v1/cron", "", asViewer).json(t, &cron)
	if len(cron.Cron) != 1 || cron.Cron[0].Identifier != "nightly_report" || cron.Cron[0].NextRun == nil {
		t.Errorf("cron = %+v", cron)
	}
	want(t, "unknown endpoint", b.do(t, "GET", "/api/v1/nope", "", asViewer), http.StatusNotFound)
	want(t, "missing job", b.do(t, "GET", "/api/v1/jobs/999999", "", asViewer), http.StatusNotFound)
	want(t, "bad id", b.do(t, "GET", "/api/v1/jobs/abc", "", asViewer), http.StatusBadRequest)
}

// The workers endpoint and page count each locker's jobs and queues
// exactly, however many running jobs there are: more here than five full
// pages of jobs.
func TestWorkersCountEveryLockExactly(t *testing.T) {
	t.Parallel()
	b := setup(t, admin.Options{})
	const nodeJobs, liveJobs = 5*core.MaxPageSize + 7, 30
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := b.db.Exec(b.ctx, strings.ReplaceAll(sql, "S.", fmt.Sprintf("%q.", b.schema)), args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`select from S.add_jobs(array(select row('bulk', '{}'::json, null, null, null, null, null, null)::S.job_spec
		from generate_series(1, $1::int) g))`, int64(nodeJobs+liveJobs+5))
	lock := func(by string, n int64, ago string) {
		t.Helper()
		exec(`update S._private_jobs set locked_by = $1, locked_at = now() - $3::interval, attempts = 1
			where id in (select id from S._private_jobs where locked_by is null order by id limit $2)`, by, n, ago)
	}
	// A Node worker (unregistered) and a live gworker worker hold jobs; a
	// third locker holds only a queue, and the oldest lock.
	lock("pool-node", nodeJobs, "1 hour")
	lock("pool-live", liveJobs, "1 minute")
	b.registerWorker(t, testkit.RegisteredWorker{ID: "pool-live"})
	exec("insert into S._private_job_queues (queue_name, locked_by, locked_at) values ('qa', 'pool-node', now()), ('qb', 'pool-queue-only', now() - interval '2 hours'), ('qc', null, null)")

	var got struct {
		Workers []struct {
			ID         string
			LockedJobs int64 `json:"locked_jobs"`
		}
		Others []struct {
			ID           string
			LockedJobs   int64  `json:"locked_jobs"`
			LockedQueues int64  `json:"locked_queues"`
			OldestLock   string `json:"oldest_lock"`
		} `json:"other_lockers"`
	}
	r := b.do(t, "GET", "/api/v1/workers", "", asViewer)
	want(t, "workers", r, http.StatusOK)
	r.json(t, &got)
	if len(got.Workers) != 1 || got.Workers[0].ID != "pool-live" || got.Workers[0].LockedJobs != liveJobs {
		t.Errorf("workers = %+v, want pool-live holding %d jobs", got.Workers, liveJobs)
	}
	others := ""
	for _, o := range got.Others {
		others += fmt.Sprintf("%s:%d:%d:%v ", o.ID, o.LockedJobs, o.LockedQueues, o.OldestLock != "")
	}
	if want := fmt.Sprintf("pool-queue-only:0:1:true pool-node:%d:1:true ", nodeJobs); others != want {
		t.Errorf("other_lockers = %s\nwant %s\nbody: %.500s", others, want, r.body)
	}

	page := b.do(t, "GET", "/workers", "", asViewer)
	want(t, "workers page", page, http.StatusOK)
	for _, row := range []string{
		fmt.Sprintf(`pool-node</a></td><td class="num">%d</td><td class="num">1</td>`, nodeJobs),
		`pool-queue-only</a></td><td class="num">0</td><td class="num">1</td>`,
	} {
		if !strings.Contains(page.body, row) {
			t.Errorf("the workers page lacks %s", row)
		}
	}
}

type jobsPage struct {
	Jobs []struct {
		ID             int64
		TaskIdentifier string `json:"task_identifier"`
		State          string
		LastError      *string `json:"last_error"`
	}
	Next string
	Prev string
}

func TestJobsFilterOnTheServerAndPageByCursor(t *testing.T) {
	t.Parallel()
	b := setup(t, admin.Options{})
	var failedA []int64
	for i := range 5 {
		a := b.addJob(t, "task_a", map[string]any{"n": i}, nil)
		b.addJob(t, "task_b", map[string]any{"n": i}, nil)
		if i%2 == 0 {
			b.failJob(t, a.ID, "boom")
			failedA = append(failedA, a.ID)
		}
	}
	var got []int64
	next := ""
	for pages := 0; ; pages++ {
		var p jobsPage
		path := "/api/v1/jobs?state=failed&task=task_a&limit=2"
		if next != "" {
			path += "&after=" + url.QueryEscape(next)
		}
		r := b.do(t, "GET", path, "", asViewer)
		want(t, path, r, http.StatusOK)
		r.json(t, &p)
		for _, j := range p.Jobs {
			if j.TaskIdentifier != "task_a" || j.State != "failed" || j.LastError == nil || *j.LastError != "boom" {
				t.Fatalf("job %+v does not match the filter", j)
			}
			got = append(got, j.ID)
		}
		if next = p.Next; next == "" {
			break
		}
		if pages > 5 {
			t.Fatal("the cursor never ends")
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, failedA) {
		t.Fatalf("failed task_a jobs = %v, want %v", got, failedA)
	}
	var p jobsPage
	b.do(t, "GET", `/api/v1/jobs?payload=`+url.QueryEscape(`{"n":3}`), "", asViewer).json(t, &p)
	if len(p.Jobs) != 2 {
		t.Fatalf("payload containment found %d jobs, want 2", len(p.Jobs))
	}
	for _, bad := range []string{"state=bogus", "payload=%7Bnope", "limit=0", "limit=5000", "after=xyz"} {
		want(t, bad, b.do(t, "GET", "/api/v1/jobs?"+bad, "", asViewer), http.StatusBadRequest)
	}
}

func TestPerJobActionsChangeTheJobAndAreAudited(t *testing.T) {
	t.Parallel()
	b := setup(t, admin.Options{})
	get := func(id int64) (*core.Job, bool) {
		j, err := b.utils.GetJob(b.ctx, id)
		if errors.Is(err, core.ErrJobNotFound) {
			return nil, false
		}
		if err != nil {
			t.Fatal(err)
		}
		return j, true
	}
	post := func(id int64, action, body string) response {
		return b.do(t, "POST", fmt.Sprintf("/api/v1/jobs/%d/%s", id, action), body, asOperator)
	}

	j := b.addJob(t, "t", nil, nil)
	b.failJob(t, j.ID, "broken")
	want(t, "retry", post(j.ID, "retry", ""), http.StatusOK)
	if got, _ := get(j.ID); got.Attempts != 0 || got.State(time.Now()) != core.JobStateReady {
		t.Fatalf("after retry: %+v", got)
	}

	b.failJob(t, j.ID, "broken")
	want(t, "run-now", post(j.ID, "run-now", ""), http.StatusOK)
	if got, _ := get(j.ID); got.Attempts >= got.MaxAttempts || got.RunAt.After(time.Now().Add(time.Second)) {
		t.Fatalf("a failed job after run now: %+v", got)
	}

	want(t, "reschedule", post(j.ID, "reschedule", `{"run_at":"1h","priority":7}`), http.StatusOK)
	if got, _ := get(j.ID); got.Priority != 7 || time.Until(got.RunAt) < 50*time.Minute {
		t.Fatalf("after reschedule: %+v", got)
	}
	want(t, "reschedule without a change", post(j.ID, "reschedule", `{}`), http.StatusBadRequest)

	want(t, "fail", post(j.ID, "fail", `{"reason":"bad input"}`), http.StatusOK)
	if got, _ := get(j.ID); got.LastError == nil || *got.LastError != "bad input" || got.Attempts != got.MaxAttempts {
		t.Fatalf("after fail: %+v", got)
	}

	c := b.addJob(t, "t", nil, nil)
	want(t, "cancel", post(c.ID, "cancel", `{"reason":"not needed"}`), http.StatusOK)
	if got, _ := get(c.ID); got.LastError == nil || *got.LastError != "Cancelled: not needed" {
		t.Fatalf("after cancel: %+v", got)
	}

	want(t, "complete", post(j.ID, "complete", ""), http.StatusOK)
	if _, ok := get(j.ID); ok {
		t.Fatal("a completed job is still there")
	}
	want(t, "remove", post(c.ID, "remove", ""), http.StatusOK)
	if _, ok := get(c.ID); ok {
		t.Fatal("a removed job is still there")
	}
	want(t, "action on a missing job", post(c.ID, "retry", ""), http.StatusNotFound)
	want(t, "unknown action", post(c.ID, "explode", ""), http.StatusBadRequest)
	want(t, "unknown field", post(c.ID, "fail", `{"reasn":"typo"}`), http.StatusBadRequest)

	var audit struct {
		Entries []struct {
			Actor, Action string
			JobIDs        []int64 `json:"job_ids"`
			Changed       int64
		}
	}
	b.do(t, "GET", "/api/v1/audit", "", asViewer).json(t, &audit)
	var actions []string
	for _, e := range audit.Entries {
		if e.Actor != operatorUser {
			t.Errorf("audit entry by %q", e.Actor)
		}
		actions = append(actions, e.Action)
	}
	wantActions := []string{"retry", "remove", "complete", "cancel", "fail", "reschedule", "run-now", "retry"}
	if !slices.Equal(actions, wantActions) {
		t.Fatalf("audit actions (newest first) = %v, want %v", actions, wantActions)
	}
	if e := audit.Entries[len(audit.Entries)-1]; !slices.Equal(e.JobIDs, []int64{j.ID}) || e.Changed != 1 {
		t.Fatalf("first audit entry = %+v", e)
	}
}

// An action whose audit entry cannot be written still answers success: the
// change was made, and an error would make the operator, or a client's
// retry, make it again. The failure is logged with the entry.
func TestActionSucceedsWhenOnlyItsAuditEntryFails(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	var mu sync.Mutex
	b := setup(t, admin.Options{Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))})
	j := b.addJob(t, "t", nil, nil)
	b.failJob(t, j.ID, "broken")
	if _, err := b.db.Exec(b.ctx, fmt.Sprintf(`drop table %q._private_gworker_audit`, b.schema)); err != nil {
		t.Fatal(err)
	}
	want(t, "retry", b.do(t, "POST", fmt.Sprintf("/api/v1/jobs/%d/retry", j.ID), "", asOperator), http.StatusOK)
	got, err := b.utils.GetJob(b.ctx, j.ID)
	if err != nil || got.Attempts != 0 || got.State(time.Now()) != core.JobStateReady {
		t.Fatalf("after a retry whose audit failed: %+v, %v; want the job ready with 0 attempts", got, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if line := logs.String(); !strings.Contains(line, "level=ERROR") || !strings.Contains(line, "could not be recorded in the audit log") ||
		!strings.Contains(line, "action=retry") || !strings.Contains(line, fmt.Sprint(j.ID)) {
		t.Fatalf("the lost audit entry was not logged with its action and job:\n%s", line)
	}
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestBulkActionsPreviewAndNeedConfirmation(t *testing.T) {
	t.Parallel()
	b := setup(t, admin.Options{})
	for i := range 6 {
		j := b.addJob(t, "mailer", map[string]any{"i": i}, nil)
		if i < 4 {
			b.failJob(t, j.ID, "smtp down")
		}
	}
	other := b.addJob(t, "other", nil, nil)
	b.failJob(t, other.ID, "smtp down")

	filter := `"filter":{"state":["failed"],"task":["mailer"]}`
	var res struct {
		Matched, Changed int64
		IDs              []int64
	}
	r := b.do(t, "POST", "/api/v1/jobs/actions/retry", `{`+filter+`,"dry_run":true}`, asOperator)
	want(t, "dry run", r, http.StatusOK)
	r.json(t, &res)
	if res.Matched != 4 || res.Changed != 0 {
		t.Fatalf("dry run = %+v", res)
	}
	want(t, "without confirm", b.do(t, "POST", "/api/v1/jobs/actions/retry", `{`+filter+`}`, asOperator), http.StatusBadRequest)
	want(t, "selecting nothing", b.do(t, "POST", "/api/v1/jobs/actions/retry", `{}`, asOperator), http.StatusBadRequest)
	r = b.do(t, "POST", "/api/v1/jobs/actions/retry", `{`+filter+`,"confirm":true}`, asOperator)
	want(t, "confirmed", r, http.StatusOK)
	r.json(t, &res)
	if res.Matched != 4 || res.Changed != 4 || len(res.IDs) != 4 {
		t.Fatalf("retry = %+v", res)
	}
	if n, _ := b.utils.CountJobs(b.ctx, core.JobFilter{States: []core.JobState{core.JobStateFailed}}); n != 1 {
		t.Fatalf("%d failed jobs left, want only the other task's", n)
	}
	r = b.do(t, "POST", "/api/v1/jobs/actions/remove", fmt.Sprintf(`{"ids":[%d]}`, other.ID), asOperator)
	want(t, "by ids", r, http.StatusOK)
	r.json(t, &res)
	if res.Changed != 1 {
		t.Fatalf("remove by id = %+v", res)
	}
}

func TestAddJobValidatesLikeTheCommand(t *testing.T) {
	t.Parallel()
	b := setup(t, admin.Options{})
	for name, body := range map[string]string{
		"no task":           `{"payload":{}}`,
		"key mode, no key":  `{"task":"t","key_mode":"replace"}`,
		"bad key mode":      `{"task":"t","key":"k","key_mode":"sometimes"}`,
		"max attempts":      `{"task":"t","max_attempts":40000}`,
		"bad run_at":        `{"task":"t","run_at":"tomorrow"}`,
		"long queue name":   `{"task":"t","queue":"` + strings.Repeat("q", 200) + `"}`,
		"empty flag":        `{"task":"t","flags":[""]}`,
		"not JSON at all":   `task=t`,
		"unknown field":     `{"task":"t","priorty":1}`,
		"NUL in the task":   `{"task":"t\u0000x"}`,
		"NUL in a flag":     `{"task":"t","flags":["a\u0000"]}`,
		"priority too high": `{"task":"t","priority":99999}`,
	} {
		r := b.do(t, "POST", "/api/v1/jobs", body, asOperator)
		if r.status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400; %s", name, r.status, r.body)
		}
	}
	// Core's refusals name the request's fields.
	for field, body := range map[string]string{
		"key_mode":     `{"task":"t","key":"k","key_mode":"sometimes"}`,
		"max_attempts": `{"task":"t","max_attempts":40000}`,
		"queue":        `{"task":"t","queue":"` + strings.Repeat("q", 200) + `"}`,
		"flags":        `{"task":"t","flags":[""]}`,
	} {
		r := b.do(t, "POST", "/api/v1/jobs", body, asOperator)
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, "invalid "+field) {
			t.Errorf("%s: status %d, %s; want 400 naming %s", field, r.status, r.body, field)
		}
	}
	// The form takes the payload as text, which must be JSON.
	r := b.do(t, "POST", "/jobs/new", "task=t&payload="+url.QueryEscape("{nope"), asOperator)
	want(t, "form with a bad payload", r, http.StatusBadRequest)
	if !strings.Contains(r.body, "payload is not valid JSON") {
		t.Fatalf("the form does not say what is wrong: %s", r.body)
	}
	r = b.do(t, "POST", "/api/v1/jobs", `{"task":"send_email","payload":{"to":"a@b.c"},"queue":"mail","run_at":"10m","max_attempts":3,"key":"k1","priority":-1,"flags":["vip"]}`, asOperator)
	want(t, "add", r, http.StatusCreated)
	if keys := testkit.JSONKeys(t, []byte(r.body)); !slices.Equal(keys, testkit.JobJSONKeys) {
		t.Errorf("the added job has the keys %q, want %q", keys, testkit.JobJSONKeys)
	}
	var j struct {
		ID          int64
		Queue       string `json:"queue_name"`
		MaxAttempts int    `json:"max_attempts"`
		State       string
		Flags       []string
	}
	r.json(t, &j)
	if j.Queue != "mail" || j.MaxAttempts != 3 || j.State != "scheduled" || !slices.Equal(j.Flags, []string{"vip"}) {
		t.Fatalf("added job = %+v", j)
	}
}

func TestMaintenanceEndpoints(t *testing.T) {
	t.Parallel()
	b := setup(t, admin.Options{})
	j := b.addJob(t, "t", nil, nil)
	b.failJob(t, j.ID, "x")
	r := b.do(t, "POST", "/api/v1/maintenance/cleanup", `{"tasks":["DELETE_PERMAFAILED_JOBS"]}`, asOperator)
	want(t, "cleanup", r, http.StatusOK)
	if _, err := b.utils.GetJob(b.ctx, j.ID); !errors.Is(err, core.ErrJobNotFound) {
		t.Fatalf("the failed job survived cleanup: %v", err)
	}
	want(t, "bad cleanup task", b.do(t, "POST", "/api/v1/maintenance/cleanup", `{"tasks":["DROP_EVERYTHING"]}`, asOperator), http.StatusBadRequest)

	lockedBy := func(id int64) string {
		t.Helper()
		j, err := b.utils.GetJob(b.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return j.LockedBy // "" when unlocked
	}
	lockFor := func(id int64, worker string) {
		t.Helper()
		if _, err := b.db.Exec(b.ctx, fmt.Sprintf(`update %q._private_jobs set locked_by = $2, locked_at = now(), attempts = 1 where id = $1`, b.schema), id, worker); err != nil {
			t.Fatal(err)
		}
	}
	held := b.addJob(t, "t", nil, nil)
	lockFor(held.ID, "pool-dead")
	want(t, "force-unlock", b.do(t, "POST", "/api/v1/maintenance/force-unlock", `{"worker_ids":["pool-dead"]}`, asOperator), http.StatusOK)
	if by := lockedBy(held.ID); by != "" {
		t.Fatalf("after force-unlock of pool-dead, job %d is locked by %s", held.ID, by)
	}
	want(t, "force-unlock of nobody", b.do(t, "POST", "/api/v1/maintenance/force-unlock", `{}`, asOperator), http.StatusBadRequest)

	// A registered worker whose heartbeat stopped an hour ago holds a job.
	b.registerWorker(t, testkit.RegisteredWorker{ID: "pool-gone", HeartbeatAgo: time.Hour})
	lockFor(held.ID, "pool-gone")
	r = b.do(t, "POST", "/api/v1/maintenance/sweep", `{"dry_run":true}`, asOperator)
	want(t, "sweep", r, http.StatusOK)
	if keys := testkit.JSONKeys(t, []byte(r.body)); !slices.Equal(keys, testkit.SweepJSONKeys) {
		t.Errorf("the sweep answered the keys %q, want %q", keys, testkit.SweepJSONKeys)
	}
	var sw core.SweepResult
	r.json(t, &sw)
	if wantSweep := (core.SweepResult{DryRun: true, WorkerIDs: []string{"pool-gone"}, RemovedWorkerIDs: []string{"pool-gone"},
		JobIDs: []int64{held.ID}, Jobs: 1}); !reflect.DeepEqual(sw, wantSweep) {
		t.Fatalf("sweep dry run = %+v, want %+v", sw, wantSweep)
	}
	if by := lockedBy(held.ID); by != "pool-gone" {
		t.Fatalf("a dry run changed job %d: locked by %q", held.ID, by)
	}
	r = b.do(t, "POST", "/api/v1/maintenance/sweep", `{}`, asOperator)
	want(t, "sweep", r, http.StatusOK)
	if by := lockedBy(held.ID); by != "" {
		t.Fatalf("after the sweep, job %d is still locked by %s", held.ID, by)
	}
	want(t, "unknown op", b.do(t, "POST", "/api/v1/maintenance/vacuum", `{}`, asOperator), http.StatusBadRequest)
	var audit struct{ Entries []struct{ Action string } }
	b.do(t, "GET", "/api/v1/audit", "", asViewer).json(t, &audit)
	var got []string
	for _, e := range audit.Entries {
		got = append(got, e.Action)
	}
	// Newest first. A request refused as bad input (the unknown cleanup
	// task, force-unlock of nobody) changed nothing and is not recorded;
	// neither is the dry run.
	if !slices.Equal(got, []string{"sweep", "force-unlock", "cleanup"}) {
		t.Fatalf("audit = %v", got)
	}
}

func TestCleanupKeepsTheTasksOfLiveWorkers(t *testing.T) {
	t.Parallel()
	b := setup(t, admin.Options{})
	kept, gone := b.addJob(t, "kept", nil, nil), b.addJob(t, "gone", nil, nil)
	if _, err := b.utils.CompleteJobs(b.ctx, []int64{kept.ID, gone.ID}); err != nil {
		t.Fatal(err)
	}
	// A live worker that registered "kept" (and caches its id).
	b.registerWorker(t, testkit.RegisteredWorker{ID: "pool-live", Tasks: []string{"kept"}})
	want(t, "cleanup", b.do(t, "POST", "/api/v1/maintenance/cleanup", `{"tasks":["GC_TASK_IDENTIFIERS"]}`, asOperator), http.StatusOK)
	rows, err := b.db.Query(b.ctx, fmt.Sprintf(`select identifier from %q._private_tasks order by identifier`, b.schema))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var left []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		left = append(left, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(left, []string{"kept"}) {
		t.Fatalf("task identifiers after cleanup = %v, want [kept]", left)
	}
}

// writes are one request of each kind that changes something.
func writes(id int64) [][2]string {
	var out [][2]string
	for _, a := range []string{"retry", "run-now", "reschedule", "complete", "fail", "remove", "cancel"} {
		out = append(out, [2]string{fmt.Sprintf("/api/v1/jobs/%d/%s", id, a), `{"run_at":"1m"}`})
	}
	return append(out,
		[2]string{"/api/v1/jobs/actions/retry", `{"filter":{},"confirm":true}`},
		[2]string{"/api/v1/jobs", `{"task":"t"}`},
		[2]string{"/api/v1/maintenance/cleanup", `{}`},
		[2]string{"/api/v1/maintenance/force-unlock", `{"worker_ids":["w"]}`},
		[2]string{"/api/v1/maintenance/sweep", `{"dry_run":true}`},
		[2]string{fmt.Sprintf("/jobs/%d/retry", id), "reason=x"},
		[2]string{"/jobs/actions", fmt.Sprintf("action=retry&id=%d", id)},
		[2]string{"/jobs/new", "task=t"},
		[2]string{"/maintenance/cleanup", "task=GC_JOB_QUEUES"},
	)
}

func TestViewersAndReadOnlyChangeNothing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts admin.Options
		auth func(*http.Request)
	}{
		{"viewer", admin.Options{}, asViewer},
		{"read-only operator", admin.Options{ReadOnly: true}, asOperator},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tc.opts)
			j := b.addJob(t, "t", nil, nil)
			b.failJob(t, j.ID, "x")
			for _, w := range writes(j.ID) {
				want(t, "POST "+w[0], b.do(t, "POST", w[0], w[1], tc.auth), http.StatusForbidden)
			}
			got, err := b.utils.GetJob(b.ctx, j.ID)
			if err != nil || got.Attempts != got.MaxAttempts {
				t.Fatalf("the job changed: %+v, %v", got, err)
			}
			if n, _ := b.utils.CountJobs(b.ctx, core.JobFilter{}); n != 1 {
				t.Fatalf("%d jobs, want 1", n)
			}
			var me struct {
				CanWrite bool `json:"can_write"`
			}
			b.do(t, "GET", "/api/v1/me", "", tc.auth).json(t, &me)
			if me.CanWrite {
				t.Fatal("me says it can write")
			}
			for _, p := range []string{"/", "/jobs", fmt.Sprintf("/jobs/%d", j.ID), "/maintenance"} {
				r := b.do(t, "GET", p, "", tc.auth)
				want(t, p, r, http.StatusOK)
				if strings.Contains(r.body, `method="post"`) {
					t.Errorf("%s shows a write control to a %s", p, tc.name)
				}
			}
		})
	}
}

func TestCrossSiteWritesAreRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, admin.Options{})
	j := b.addJob(t, "t", nil, nil)
	b.failJob(t, j.ID, "x")
	for _, w := range writes(j.ID) {
		want(t, "cross-site POST "+w[0], b.do(t, "POST", w[0], w[1], crossSite(asOperator)), http.StatusForbidden)
	}
	// The same with the browser's same-origin headers goes through.
	sameOrigin := func(r *http.Request) {
		asOperator(r)
		r.Header.Set("Sec-Fetch-Site", "same-origin")
		r.Header.Set("Origin", b.srv.URL)
	}
	want(t, "same-origin retry", b.do(t, "POST", fmt.Sprintf("/api/v1/jobs/%d/retry", j.ID), "", sameOrigin), http.StatusOK)
	// An Origin of another host without Sec-Fetch-Site (an older browser).
	oldBrowser := func(r *http.Request) {
		asOperator(r)
		r.Header.Set("Origin", "http://evil.example")
	}
	want(t, "foreign Origin", b.do(t, "POST", fmt.Sprintf("/api/v1/jobs/%d/retry", j.ID), "", oldBrowser), http.StatusForbidden)
}

func TestTrustedOriginsMayPost(t *testing.T) {
	t.Parallel()
	b := setup(t, admin.Options{TrustedOrigins: []string{"https://ops.example.com"}})
	j := b.addJob(t, "t", nil, nil)
	viaProxy := func(r *http.Request) {
		asOperator(r)
		r.Header.Set("Sec-Fetch-Site", "cross-site")
		r.Header.Set("Origin", "https://ops.example.com")
	}
	want(t, "trusted origin", b.do(t, "POST", fmt.Sprintf("/api/v1/jobs/%d/retry", j.ID), "", viaProxy), http.StatusOK)
}

func TestAuthenticationModes(t *testing.T) {
	t.Parallel()
	t.Run("basic", func(t *testing.T) {
		t.Parallel()
		b := setup(t, admin.Options{})
		for name, auth := range map[string]func(*http.Request){
			"none":           nil,
			"wrong password": func(r *http.Request) { r.SetBasicAuth(operatorUser, "nope") },
			"mixed users":    func(r *http.Request) { r.SetBasicAuth(operatorUser, viewerPassword) },
			"bearer instead": func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+operatorPassword) },
		} {
			for _, p := range []string{"/api/v1/stats", "/", "/jobs"} {
				r := b.do(t, "GET", p, "", auth)
				want(t, name+" "+p, r, http.StatusUnauthorized)
				if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic ") {
					t.Errorf("%s %s: WWW-Authenticate %q", name, p, r.header.Get("WWW-Authenticate"))
				}
			}
		}
		want(t, "static files need no login", b.do(t, "GET", "/static/admin.css", "", nil), http.StatusOK)
		var me struct{ Name, Role string }
		b.do(t, "GET", "/api/v1/me", "", asViewer).json(t, &me)
		if me.Name != viewerUser || me.Role != "viewer" {
			t.Fatalf("me = %+v", me)
		}
	})
	t.Run("bearer", func(t *testing.T) {
		t.Parallel()
		const token = "0123456789abcdef-operator"
		b := setup(t, admin.Options{Auth: admin.Bearer(
			admin.BearerToken{Name: "ci", Token: token, Role: admin.RoleOperator},
			admin.BearerToken{Name: "dash", Token: "0123456789abcdef-viewer", Role: admin.RoleViewer})})
		bearer := func(tok string) func(*http.Request) {
			return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
		}
		want(t, "no token", b.do(t, "GET", "/api/v1/stats", "", nil), http.StatusUnauthorized)
		want(t, "wrong token", b.do(t, "GET", "/api/v1/stats", "", bearer("0123456789abcdef-nope")), http.StatusUnauthorized)
		want(t, "token", b.do(t, "GET", "/api/v1/stats", "", bearer(token)), http.StatusOK)
		want(t, "viewer token writes", b.do(t, "POST", "/api/v1/jobs", `{"task":"t"}`, bearer("0123456789abcdef-viewer")), http.StatusForbidden)
		want(t, "operator token writes", b.do(t, "POST", "/api/v1/jobs", `{"task":"t"}`, bearer(token)), http.StatusCreated)
		// A browser is sent to the login form, which sets an HttpOnly cookie.
		r := b.do(t, "GET", "/", "", nil)
		want(t, "page without a token", r, http.StatusSeeOther)
		if loc := r.header.Get("Location"); loc != "/login" {
			t.Fatalf("redirect to %q", loc)
		}
		want(t, "login form", b.do(t, "GET", "/login", "", nil), http.StatusOK)
		want(t, "bad login", b.do(t, "POST", "/login", "token=wrong", nil), http.StatusUnauthorized)
		r = b.do(t, "POST", "/login", "token="+token, nil)
		want(t, "login", r, http.StatusSeeOther)
		c := r.header.Get("Set-Cookie")
		for _, attr := range []string{"HttpOnly", "SameSite=Strict", "Path=/"} {
			if !strings.Contains(c, attr) {
				t.Errorf("cookie %q lacks %s", c, attr)
			}
		}
		cookie := strings.SplitN(c, ";", 2)[0]
		r = b.do(t, "GET", "/", "", func(r *http.Request) { r.Header.Set("Cookie", cookie) })
		want(t, "page with the cookie", r, http.StatusOK)
		want(t, "cross-site login", b.do(t, "POST", "/login", "token="+token, func(r *http.Request) {
			r.Header.Set("Sec-Fetch-Site", "cross-site")
		}), http.StatusForbidden)
	})
	t.Run("func", func(t *testing.T) {
		t.Parallel()
		// As behind a proxy that authenticates and names the user.
		b := setup(t, admin.Options{Auth: admin.AuthFunc(func(r *http.Request) (admin.Identity, error) {
			switch r.Header.Get("X-User") {
			case "":
				return admin.Identity{}, admin.ErrUnauthenticated
			case "root":
				return admin.Identity{Name: "root", Role: "superuser"}, nil
			case "ops":
				return admin.Identity{Name: "ops", Role: admin.RoleOperator}, nil
			}
			return admin.Identity{Name: r.Header.Get("X-User"), Role: admin.RoleViewer}, nil
		})})
		as := func(u string) func(*http.Request) { return func(r *http.Request) { r.Header.Set("X-User", u) } }
		want(t, "nobody", b.do(t, "GET", "/api/v1/stats", "", nil), http.StatusUnauthorized)
		want(t, "unknown role", b.do(t, "GET", "/api/v1/stats", "", as("root")), http.StatusForbidden)
		want(t, "viewer", b.do(t, "GET", "/api/v1/stats", "", as("vera")), http.StatusOK)
		want(t, "viewer writes", b.do(t, "POST", "/api/v1/jobs", `{"task":"t"}`, as("vera")), http.StatusForbidden)
		want(t, "operator writes", b.do(t, "POST", "/api/v1/jobs", `{"task":"t"}`, as("ops")), http.StatusCreated)
		var audit struct{ Entries []struct{ Actor string } }
		b.do(t, "GET", "/api/v1/audit", "", as("vera")).json(t, &audit)
		if len(audit.Entries) != 1 || audit.Entries[0].Actor != "ops" {
			t.Fatalf("audit = %+v", audit)
		}
	})
	t.Run("none", func(t *testing.T) {
		t.Parallel()
		b := setup(t, admin.Options{Auth: admin.NoAuth(admin.RoleViewer)})
		want(t, "read", b.do(t, "GET", "/api/v1/stats", "", nil), http.StatusOK)
		want(t, "write", b.do(t, "POST", "/api/v1/jobs", `{"task":"t"}`, nil), http.StatusForbidden)
	})
}

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	t.Parallel()
	b := setup(t, admin.Options{})
	for _, p := range []string{"/", "/jobs", "/api/v1/stats", "/static/admin.js", "/nope"} {
		for _, auth := range []func(*http.Request){asViewer, nil} {
			r := b.do(t, "GET", p, "", auth)
			csp := r.header.Get("Content-Security-Policy")
			for _, d := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "form-action 'self'"} {
				if !strings.Contains(csp, d) {
					t.Errorf("%s: CSP %q lacks %s", p, csp, d)
				}
			}
			if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
				t.Errorf("%s: CSP %q allows inline code", p, csp)
			}
			for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"} {
				if r.header.Get(k) != v {
					t.Errorf("%s: %s = %q", p, k, r.header.Get(k))
				}
			}
		}
	}
	r := b.do(t, "GET", "/", "", asViewer)
	if strings.Contains(r.body, "<script>") || strings.Contains(r.body, " style=") || strings.Contains(r.body, "onclick") {
		t.Fatal("the page has inline script or style, which the CSP forbids")
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("page Cache-Control %q", r.header.Get("Cache-Control"))
	}
}

func TestRequestBodiesAreBounded(t *testing.T) {
	t.Parallel()
	b := setup(t, admin.Options{})
	big := `{"task":"t","payload":{"x":"` + strings.Repeat("a", admin.MaxBodyBytes) + `"}}`
	want(t, "big JSON", b.do(t, "POST", "/api/v1/jobs", big, asOperator), http.StatusRequestEntityTooLarge)
	bigForm := "task=t&payload=" + strings.Repeat("a", admin.MaxBodyBytes)
	r := b.do(t, "POST", "/jobs/new", bigForm, asOperator)
	if r.status != http.StatusRequestEntityTooLarge && r.status != http.StatusBadRequest {
		t.Fatalf("big form: status %d", r.status)
	}
	if n, _ := b.utils.CountJobs(b.ctx, core.JobFilter{}); n != 0 {
		t.Fatalf("%d jobs added", n)
	}
}

func TestMountedUnderAPrefix(t *testing.T) {
	t.Parallel()
	b := setup(t, admin.Options{Prefix: "/ops/queue-admin"})
	j := b.addJob(t, "t", nil, nil)
	r := b.do(t, "GET", "/", "", asViewer)
	want(t, "overview", r, http.StatusOK)
	for _, link := range []string{`href="/ops/queue-admin/jobs"`, `src="/ops/queue-admin/static/admin.js"`, `href="/ops/queue-admin/static/admin.css"`} {
		if !strings.Contains(r.body, link) {
			t.Errorf("overview lacks %s", link)
		}
	}
	want(t, "API", b.do(t, "GET", fmt.Sprintf("/api/v1/jobs/%d", j.ID), "", asViewer), http.StatusOK)
	r = b.do(t, "POST", fmt.Sprintf("/jobs/%d/retry", j.ID), "", asOperator)
	want(t, "form post", r, http.StatusSeeOther)
	if loc := r.header.Get("Location"); !strings.HasPrefix(loc, fmt.Sprintf("/ops/queue-admin/jobs/%d?", j.ID)) {
		t.Fatalf("redirect to %q", loc)
	}
	// Behind http.StripPrefix the same handler serves the stripped paths.
	h, err := admin.NewHandler(b.utils, admin.Options{Auth: basicUsers(), Prefix: "/x"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.StripPrefix("/x", h))
	defer srv.Close()
	req, _ := http.NewRequestWithContext(context.Background(), "GET", srv.URL+"/x/jobs", nil)
	asViewer(req)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("behind StripPrefix: %d", res.StatusCode)
	}
}
