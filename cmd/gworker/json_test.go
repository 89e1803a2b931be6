package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gworker/gworker/admin"
	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/internal/testkit"
)

// adminAPI serves the admin API on the bundle's schema, with no
// authentication, until the test ends, and returns its client.
func (b *bundle) adminAPI(t *testing.T) (*core.Utils, func(method, path, body string) string) {
	t.Helper()
	u, err := core.NewUtils(pgxdriver.New(b.pool), core.UtilsOptions{Schema: b.schema})
	if err != nil {
		t.Fatal(err)
	}
	h, err := admin.NewHandler(u, admin.Options{Auth: admin.NoAuth(admin.RoleOperator)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return u, func(method, path, body string) string {
		t.Helper()
		req, err := http.NewRequestWithContext(b.ctx, method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %d %s (%v)", method, path, resp.StatusCode, out, err)
		}
		return string(out)
	}
}

// A job and a sweep read through the command line's --json and through the
// admin API are the same JSON, byte for byte, with the keys both promise.
func TestJobAndSweepJSONAreTheAdminAPIs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.migrate(t)
	job := b.add(t, "send_email", `{"to": "<ada@example.com>", "n": 1.5}`, "--queue", "mail", "--key", "welcome-ada",
		"--flag", "vip", "--flag", "eu", "--priority", "-2")
	b.crashedWorker(t, "pool-crashed", job.ID)
	b.exec(t, "update S._private_jobs set last_error = 'SMTP said: try later' where id = $1", job.ID)
	b.exec(t, "update S._private_job_queues set locked_by = 'pool-crashed', locked_at = now()")
	u, api := b.adminAPI(t)
	id := strconv.FormatInt(job.ID, 10)

	// The job: job --json, a line of jobs --json, GET /jobs/{id} and an
	// element of GET /jobs.
	r := b.cli(t, "job", "--json", id)
	if r.code != 0 {
		t.Fatalf("job --json: exit %d, stderr %q", r.code, r.stderr)
	}
	cliJob := strings.TrimSuffix(r.stdout, "\n")
	r = b.cli(t, "jobs", "--json", "--task", "send_email")
	if r.code != 0 {
		t.Fatalf("jobs --json: exit %d, stderr %q", r.code, r.stderr)
	}
	cliListed := strings.TrimSuffix(r.stdout, "\n")
	apiJob := strings.TrimSuffix(api("GET", "/api/v1/jobs/"+id, ""), "\n")
	var page struct{ Jobs []json.RawMessage }
	if err := json.Unmarshal([]byte(api("GET", "/api/v1/jobs?task=send_email", "")), &page); err != nil || len(page.Jobs) != 1 {
		t.Fatalf("GET /api/v1/jobs: %d jobs (%v)", len(page.Jobs), err)
	}
	for name, got := range map[string]string{"jobs --json": cliListed, "GET /api/v1/jobs/{id}": apiJob, "GET /api/v1/jobs": string(page.Jobs[0])} {
		if got != cliJob {
			t.Errorf("%s printed\n%s\njob --json printed\n%s", name, got, cliJob)
		}
	}
	if keys := testkit.JSONKeys(t, []byte(cliJob)); !slices.Equal(keys, testkit.JobJSONKeys) {
		t.Errorf("job keys %q, want %q", keys, testkit.JobJSONKeys)
	}
	// It is core's encoding of the row, and reads back into the row.
	row, err := u.GetJob(b.ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := json.Marshal(row); string(want) != cliJob {
		t.Errorf("job --json printed\n%s\ncore encodes the row as\n%s", cliJob, want)
	}
	var back core.Job
	if err := json.Unmarshal([]byte(apiJob), &back); err != nil {
		t.Fatal(err)
	}
	if back.ID != row.ID || back.QueueName != "mail" || back.Key != "welcome-ada" || back.LockedBy != "pool-crashed" ||
		back.LockedAt == nil || !back.LockedAt.Equal(*row.LockedAt) || !back.RunAt.Equal(row.RunAt) ||
		back.LastError == nil || *back.LastError != "SMTP said: try later" || !slices.Equal(back.Flags, []string{"eu", "vip"}) ||
		back.Priority != -2 || back.Attempts != 1 || back.State(row.RunAt) != core.JobStateRunning {
		t.Errorf("the job read back is %+v, want the row %+v", back, row)
	}

	// The sweep: sweep --dry-run --json and POST /maintenance/sweep with
	// dry_run, on the same database.
	r = b.cli(t, "sweep", "--dry-run", "--json")
	if r.code != 0 {
		t.Fatalf("sweep --dry-run --json: exit %d, stderr %q", r.code, r.stderr)
	}
	cliSweep := strings.TrimSuffix(r.stdout, "\n")
	apiSweep := strings.TrimSuffix(api("POST", "/api/v1/maintenance/sweep", `{"dry_run": true}`), "\n")
	if cliSweep != apiSweep {
		t.Errorf("sweep --dry-run --json printed\n%s\nthe admin API answered\n%s", cliSweep, apiSweep)
	}
	if keys := testkit.JSONKeys(t, []byte(apiSweep)); !slices.Equal(keys, testkit.SweepJSONKeys) {
		t.Errorf("sweep keys %q, want %q", keys, testkit.SweepJSONKeys)
	}
	var sweep core.SweepResult
	if err := json.Unmarshal([]byte(apiSweep), &sweep); err != nil {
		t.Fatal(err)
	}
	want := core.SweepResult{DryRun: true, WorkerIDs: []string{"pool-crashed"}, RemovedWorkerIDs: []string{"pool-crashed"},
		JobIDs: []int64{job.ID}, Jobs: 1, Queues: 1}
	if !reflect.DeepEqual(sweep, want) {
		t.Errorf("the sweep read back is %+v, want %+v", sweep, want)
	}
	if !strings.Contains(apiSweep, `"foreign_worker_ids":[]`) || !strings.Contains(apiSweep, `"skipped_job_ids":[]`) {
		t.Errorf("empty lists must be [], not null: %s", apiSweep)
	}

}
