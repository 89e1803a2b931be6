package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gworker/gworker/internal/testkit"
)

// crashedWorker registers a worker whose last heartbeat was an hour ago and
// makes it hold the given jobs, as a killed gworker leaves them.
func (b *bundle) crashedWorker(t *testing.T, id string, jobIDs ...int64) {
	t.Helper()
	b.registerWorker(t, testkit.RegisteredWorker{ID: id, Hostname: "gone-host", PID: 77, HeartbeatInterval: time.Second, HeartbeatAgo: time.Hour})
	if _, err := b.pool.Exec(b.ctx, b.sql(`update S._private_jobs set locked_by = $1, locked_at = now() - interval '1 hour', attempts = 1
		where id = any($2)`), id, jobIDs); err != nil {
		t.Fatal(err)
	}
}

func TestWorkersListsRegisteredWorkersWithStaleness(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.migrate(t)
	if r := b.cli(t, "workers"); r.code != 0 || !strings.Contains(r.stdout, "no gworker worker is registered") {
		t.Fatalf("workers on an empty registry: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	job := b.add(t, "x")
	b.crashedWorker(t, "pool-crashed", job.ID)
	b.registerWorker(t, testkit.RegisteredWorker{ID: "pool-alive", Hostname: "here", PID: 88, HeartbeatInterval: 30 * time.Second})

	r := b.cli(t, "workers")
	if r.code != 0 {
		t.Fatalf("workers: exit %d, stderr %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "WORKER") ||
		!strings.Contains(lines[1], "pool-crashed") || !strings.Contains(lines[1], "stale") || !strings.Contains(lines[1], "gone-host") ||
		!strings.Contains(lines[2], "pool-alive") || !strings.Contains(lines[2], "alive") {
		t.Fatalf("workers printed:\n%s", r.stdout)
	}
	if f := strings.Fields(lines[1]); f[len(f)-1] != "1" {
		t.Fatalf("the crashed worker's job count: %q", lines[1])
	}

	r = b.cli(t, "workers", "--json", "--threshold", "2h")
	var out []struct {
		ID         string  `json:"id"`
		PID        int     `json:"pid"`
		Stale      bool    `json:"stale"`
		LockedJobs int     `json:"locked_jobs"`
		Age        float64 `json:"heartbeat_age_seconds"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || r.code != 0 {
		t.Fatalf("workers --json: exit %d, stdout %q (%v), stderr %q", r.code, r.stdout, err, r.stderr)
	}
	if len(out) != 2 || out[0].ID != "pool-crashed" || out[0].Stale || out[0].LockedJobs != 1 || out[0].PID != 77 ||
		out[0].Age < 3500 || out[1].ID != "pool-alive" || out[1].Stale {
		t.Fatalf("workers --json --threshold 2h: %+v", out)
	}
	if r := b.cli(t, "workers", "extra"); r.code != 2 {
		t.Fatalf("workers with an argument: exit %d", r.code)
	}
}

func TestSweepRecoversDeadWorkersJobsAndDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.migrate(t)
	j1, j2 := b.add(t, "x", "--queue", "q"), b.add(t, "x")
	b.crashedWorker(t, "pool-crashed", j1.ID, j2.ID)
	if _, err := b.pool.Exec(b.ctx, b.sql(`update S._private_job_queues set locked_by = 'pool-crashed', locked_at = now()`)); err != nil {
		t.Fatal(err)
	}
	state := func() string {
		var s string
		b.queryRow(t, `select concat_ws(E'\n', (select string_agg(j::text, E'\n' order by id) from S._private_jobs j),
			(select string_agg(q::text, ',') from S._private_job_queues q), (select string_agg(w::text, ',') from S._private_gworker_workers w))`, nil, &s)
		return s
	}
	before := state()

	r := b.cli(t, "sweep", "--dry-run", "--json")
	var res struct {
		DryRun    bool     `json:"dry_run"`
		WorkerIDs []string `json:"worker_ids"`
		JobIDs    []int64  `json:"job_ids"`
		Jobs      int      `json:"jobs"`
		Queues    int      `json:"queues"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 0 {
		t.Fatalf("sweep --dry-run --json: exit %d, stdout %q (%v), stderr %q", r.code, r.stdout, err, r.stderr)
	}
	if !res.DryRun || len(res.WorkerIDs) != 1 || res.WorkerIDs[0] != "pool-crashed" || res.Jobs != 2 || len(res.JobIDs) != 2 || res.Queues != 1 {
		t.Fatalf("dry run result %+v", res)
	}
	if after := state(); after != before {
		t.Fatalf("dry run changed rows:\n%s\n---\n%s", before, after)
	}

	if r := b.cli(t, "sweep", "--threshold", "2h"); r.code != 0 || !strings.Contains(r.stdout, "dead workers: 0") || state() != before {
		t.Fatalf("sweep --threshold 2h: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	r = b.cli(t, "sweep", "--delay", "0")
	if r.code != 0 || !strings.Contains(r.stdout, "dead workers: 1 (pool-crashed)") || !strings.Contains(r.stdout, "jobs freed: 2") ||
		!strings.Contains(r.stdout, "queues unlocked: 1") || strings.Contains(r.stdout, "dry run") {
		t.Fatalf("sweep: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if n := b.count(t, `select count(*) from S._private_jobs where locked_by is null and attempts = 0 and run_at <= now()
		and last_error like '%pool-crashed died%'`); n != 2 {
		t.Fatalf("%d of 2 jobs returned", n)
	}
	if n := b.count(t, "select count(*) from S._private_gworker_workers") + b.count(t, "select count(*) from S._private_job_queues where locked_by is not null"); n != 0 {
		t.Fatal("the worker's row or its queue lock survived")
	}
	if r := b.cli(t, "sweep", "--action", "retry"); r.code != 2 || !strings.Contains(r.stderr, "--action") {
		t.Fatalf("sweep --action retry: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestRunRecoversCrashedWorkersJobsUnlessRecoveryIsOff(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.migrate(t)
	tasks := t.TempDir()
	writeScript(t, tasks, "x.sh", "exit 0\n")
	job := b.add(t, "x")
	b.crashedWorker(t, "pool-crashed", job.ID)

	if r := b.cli(t, "run", "--once", "--tasks", tasks, "--heartbeat-interval", "1s", "--sweep-threshold", "1s"); r.code != 2 ||
		!strings.Contains(r.stderr, "--sweep-threshold") {
		t.Fatalf("threshold below twice the heartbeat: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := b.cli(t, "run", "--once", "--tasks", tasks, "--no-recovery"); r.code != 0 {
		t.Fatalf("run --once --no-recovery: exit %d, stderr %s", r.code, r.stderr)
	}
	if n := b.count(t, "select count(*) from S._private_jobs where locked_by = 'pool-crashed'"); n != 1 {
		t.Fatal("--no-recovery recovered the job")
	}
	// RunOnce sweeps once before fetching; with no delay it runs the job.
	if r := b.cli(t, "run", "--once", "--tasks", tasks, "--heartbeat-interval", "100ms", "--sweep-threshold", "10s", "--recovery-delay", "0"); r.code != 0 {
		t.Fatalf("run --once: exit %d, stderr %s", r.code, r.stderr)
	}
	if n := b.count(t, "select count(*) from S._private_jobs") + b.count(t, "select count(*) from S._private_gworker_workers"); n != 0 {
		t.Fatalf("the crashed worker's job did not run, or a registration was left (%d rows)", n)
	}
}
