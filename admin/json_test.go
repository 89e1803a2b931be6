package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gworker/gworker/admin"
	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/internal/testkit"
)

// A job in the API is core's encoding of its row (what gworker jobs --json
// prints), with exactly the shared keys, wherever the API returns it.
func TestJobJSONIsCoresEncoding(t *testing.T) {
	t.Parallel()
	b := setup(t, admin.Options{})
	j := b.addJob(t, "send_email", map[string]any{"to": "<ada@example.com>"}, &core.JobSpec{QueueName: "mail", JobKey: "k",
		Flags: []string{"vip", "eu"}, Priority: -3})
	if _, err := b.db.Exec(b.ctx, fmt.Sprintf(`update %q._private_jobs set locked_by = 'pool-w', locked_at = now(), attempts = 1,
		last_error = 'try later' where id = $1`, b.schema), j.ID); err != nil {
		t.Fatal(err)
	}
	b.addJob(t, "resize", nil, nil) // null queue and key, no flags
	row, err := b.utils.GetJob(b.ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantJob, err := json.Marshal(row)
	if err != nil {
		t.Fatal(err)
	}

	r := b.do(t, "GET", fmt.Sprintf("/api/v1/jobs/%d", j.ID), "", asViewer)
	want(t, "job", r, http.StatusOK)
	if got := strings.TrimSuffix(r.body, "\n"); got != string(wantJob) {
		t.Errorf("GET /api/v1/jobs/{id} answered\n%s\ncore encodes the row as\n%s", got, wantJob)
	}
	var page struct{ Jobs []json.RawMessage }
	b.do(t, "GET", "/api/v1/jobs?order=oldest", "", asViewer).json(t, &page)
	if len(page.Jobs) != 2 || string(page.Jobs[0]) != string(wantJob) {
		t.Fatalf("GET /api/v1/jobs answered %d jobs, the first\n%s\nwant\n%s", len(page.Jobs), page.Jobs[0], wantJob)
	}
	for _, raw := range page.Jobs {
		if keys := testkit.JSONKeys(t, raw); !slices.Equal(keys, testkit.JobJSONKeys) {
			t.Errorf("a listed job has the keys %q, want %q", keys, testkit.JobJSONKeys)
		}
	}
	var bare map[string]any
	if err := json.Unmarshal(page.Jobs[1], &bare); err != nil {
		t.Fatal(err)
	}
	if bare["queue_name"] != nil || bare["key"] != nil || bare["locked_at"] != nil || bare["locked_by"] != nil ||
		bare["last_error"] != nil || fmt.Sprint(bare["flags"]) != "[]" || bare["state"] != "ready" {
		t.Errorf("a bare job: %s; want null queue_name, key, locked_at, locked_by, last_error, flags [], state ready", page.Jobs[1])
	}
	var back core.Job
	if err := json.Unmarshal(page.Jobs[0], &back); err != nil {
		t.Fatal(err)
	}
	if back.ID != row.ID || back.QueueName != "mail" || back.Key != "k" || back.LockedBy != "pool-w" || back.LockedAt == nil ||
		!back.LockedAt.Equal(*row.LockedAt) || !back.CreatedAt.Equal(row.CreatedAt) || back.LastError == nil ||
		*back.LastError != "try later" || !slices.Equal(back.Flags, []string{"eu", "vip"}) || back.Priority != -3 {
		t.Errorf("the job read back is %+v, want the row %+v", back, row)
	}
}

// A sweep's answer has the shared keys and lists the jobs a BeforeRecover
// hook left locked.
func TestSweepJSONListsSkippedJobs(t *testing.T) {
	t.Parallel()
	b := setup(t, admin.Options{})
	recovered, skipped := b.addJob(t, "t", nil, nil), b.addJob(t, "t", nil, nil)
	if _, err := b.db.Exec(b.ctx, fmt.Sprintf(`update %q._private_jobs set locked_by = 'pool-gone', locked_at = now() - interval '1 hour',
		attempts = 1`, b.schema)); err != nil {
		t.Fatal(err)
	}
	b.registerWorker(t, testkit.RegisteredWorker{ID: "pool-gone", HeartbeatAgo: time.Hour})
	u, err := core.NewUtils(b.db, core.UtilsOptions{Schema: b.schema, Hooks: core.Hooks{
		BeforeRecover: func(_ context.Context, j *core.Job, _ core.RecoveryInfo) core.RecoveryDecision {
			if j.ID == skipped.ID {
				return core.RecoverSkip()
			}
			return core.RecoverByDefault()
		}}})
	if err != nil {
		t.Fatal(err)
	}
	hooked := b.servedBy(t, u)

	for _, dry := range []bool{true, false} {
		r := hooked.do(t, "POST", "/api/v1/maintenance/sweep", fmt.Sprintf(`{"dry_run":%t}`, dry), asOperator)
		want(t, "sweep", r, http.StatusOK)
		if keys := testkit.JSONKeys(t, []byte(r.body)); !slices.Equal(keys, testkit.SweepJSONKeys) {
			t.Errorf("the sweep answered the keys %q, want %q", keys, testkit.SweepJSONKeys)
		}
		var res core.SweepResult
		r.json(t, &res)
		if res.DryRun != dry || !slices.Equal(res.JobIDs, []int64{recovered.ID}) || !slices.Equal(res.SkippedJobIDs, []int64{skipped.ID}) ||
			!slices.Equal(res.WorkerIDs, []string{"pool-gone"}) {
			t.Errorf("sweep (dry run %t) answered %s; want job %d recovered and job %d skipped", dry, r.body, recovered.ID, skipped.ID)
		}
	}
}
