package admin_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gworker/gworker/admin"
	"github.com/gworker/gworker/core"
)

// recordingDB is a database that notes each statement it is given (and
// each transaction begun), in order.
type recordingDB struct {
	core.Database
	mu    sync.Mutex
	stmts []string
}

func (d *recordingDB) note(sql string) {
	d.mu.Lock()
	d.stmts = append(d.stmts, strings.Join(strings.Fields(sql), " "))
	d.mu.Unlock()
}

func (d *recordingDB) statements() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.stmts)
}

func (d *recordingDB) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	d.note(sql)
	return d.Database.Exec(ctx, sql, args...)
}

func (d *recordingDB) Query(ctx context.Context, sql string, args ...any) (core.Rows, error) {
	d.note(sql)
	return d.Database.Query(ctx, sql, args...)
}

func (d *recordingDB) Begin(ctx context.Context) (core.Transaction, error) {
	d.note("begin")
	return d.Database.Begin(ctx)
}

// Run now on a mixed selection changes it in one statement: the
// permanently failed job gets its attempts back and runs now, the waiting
// one runs now and keeps its attempts, the one a worker holds is skipped
// and left as it was. The audit entry names the two changed jobs.
func TestRunNowIsOneStatementOverAMixedSelection(t *testing.T) {
	t.Parallel()
	b := setup(t, admin.Options{})
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := b.db.Exec(b.ctx, strings.ReplaceAll(sql, "S.", fmt.Sprintf("%q.", b.schema)), args...); err != nil {
			t.Fatal(err)
		}
	}
	failed := b.addJob(t, "t", nil, nil).ID
	b.failJob(t, failed, "broken")
	// Waiting: failed once, due in an hour.
	waiting := b.addJob(t, "t", nil, nil).ID
	exec("update S._private_jobs set attempts = 1, last_error = 'flaky', run_at = now() + interval '1 hour' where id = $1", waiting)
	// Held by a live worker, due in an hour.
	locked := b.addJob(t, "t", nil, nil).ID
	exec("update S._private_jobs set attempts = 1, locked_by = 'pool-live', locked_at = now() - interval '1 minute', run_at = now() + interval '1 hour' where id = $1", locked)
	lockedBefore, err := b.utils.GetJob(b.ctx, locked)
	if err != nil {
		t.Fatal(err)
	}

	// A server on a database that notes the statements.
	rec := &recordingDB{Database: b.db}
	u, err := core.NewUtils(rec, core.UtilsOptions{Schema: b.schema})
	if err != nil {
		t.Fatal(err)
	}
	rb := b.servedBy(t, u)

	r := rb.do(t, "POST", "/api/v1/jobs/actions/run-now", fmt.Sprintf(`{"ids":[%d,%d,%d]}`, failed, waiting, locked), asOperator)
	want(t, "run-now", r, http.StatusOK)
	var res struct {
		Matched, Changed, Skipped int64
		IDs                       []int64
	}
	r.json(t, &res)
	if res.Matched != 3 || res.Changed != 2 || res.Skipped != 1 || !slices.Equal(res.IDs, []int64{failed, waiting}) {
		t.Fatalf("run-now answered %s; want 3 matched, jobs %d and %d changed, the locked one skipped", r.body, failed, waiting)
	}

	var changes, audits []string
	for _, s := range rec.statements() {
		if strings.Contains(s, "_private_gworker_audit") {
			audits = append(audits, s)
		} else {
			changes = append(changes, s)
		}
	}
	if len(changes) != 1 || !strings.Contains(changes[0], "update ") {
		t.Fatalf("run-now took %d statements besides the audit entry, want one update:\n%s", len(changes), strings.Join(changes, "\n"))
	}
	if len(audits) != 1 {
		t.Fatalf("run-now wrote %d audit statements, want 1", len(audits))
	}

	now := time.Now().Add(time.Second)
	for id, attempts := range map[int64]int{failed: 0, waiting: 1} {
		j, err := b.utils.GetJob(b.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if j.Attempts != attempts || j.RunAt.After(now) || j.LockedAt != nil {
			t.Fatalf("job %d after run-now: attempts %d (want %d), run_at %v (want now), state %s",
				id, j.Attempts, attempts, j.RunAt, j.State(time.Now()))
		}
	}
	if j, err := b.utils.GetJob(b.ctx, failed); err != nil || j.LastError == nil || *j.LastError != "broken" {
		t.Fatalf("the failed job's last error after run-now: %+v, %v; want it kept", j, err)
	}
	j, err := b.utils.GetJob(b.ctx, locked)
	if err != nil {
		t.Fatal(err)
	}
	if !j.RunAt.Equal(lockedBefore.RunAt) || j.Attempts != lockedBefore.Attempts || j.LockedBy != "pool-live" {
		t.Fatalf("run-now changed the job a worker holds: %+v, was %+v", j, lockedBefore)
	}

	var audit struct {
		Entries []struct {
			Action           string
			JobIDs           []int64 `json:"job_ids"`
			Matched, Changed int64
		}
	}
	b.do(t, "GET", "/api/v1/audit", "", asViewer).json(t, &audit)
	if len(audit.Entries) != 1 {
		t.Fatalf("%d audit entries, want 1: %+v", len(audit.Entries), audit.Entries)
	}
	if e := audit.Entries[0]; e.Action != "run-now" || !slices.Equal(e.JobIDs, []int64{failed, waiting}) || e.Matched != 3 || e.Changed != 2 {
		t.Fatalf("audit entry %+v; want run-now of jobs %d and %d, 3 matched, 2 changed", e, failed, waiting)
	}

	// On the job a worker holds alone: skipped, as the other actions do,
	// not taken for a missing job.
	r = rb.do(t, "POST", fmt.Sprintf("/api/v1/jobs/%d/run-now", locked), "", asOperator)
	want(t, "run-now on a held job", r, http.StatusOK)
	r.json(t, &res)
	if res.Matched != 1 || res.Changed != 0 || res.Skipped != 1 {
		t.Fatalf("run-now on a held job answered %s; want it matched and skipped", r.body)
	}
}
