package core_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/internal/pgtest"
	"github.com/gworker/gworker/internal/testkit"
)

type sendEmail struct {
	To string `json:"to"`
}

func (sendEmail) TaskIdentifier() string { return "send_email" }

func TestAddJobDefaults(t *testing.T) {
	t.Parallel()
	b := setup(t)
	before := b.dbNow(t)
	job, err := b.utils.AddRawJob(b.ctx, "defaults", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	after := b.dbNow(t)
	row := b.job(t, job.ID)
	if row.Task != "defaults" || row.Payload != "{}" || row.Priority != 0 || row.Attempts != 0 || row.MaxAttempts != 25 ||
		row.Queue != nil || row.Key != nil || row.Flags != nil || row.LastError != nil || row.LockedAt != nil || row.Revision != 0 {
		t.Fatalf("row = %+v", row)
	}
	if row.RunAt.Before(before) || row.RunAt.After(after) {
		t.Fatalf("run_at %v not between %v and %v", row.RunAt, before, after)
	}
	if job.TaskIdentifier != "defaults" || string(job.Payload) != "{}" || job.MaxAttempts != 25 || !job.RunAt.Equal(row.RunAt) ||
		job.QueueName != "" || job.Key != "" || job.LastError != nil || job.Flags != nil {
		t.Fatalf("returned job = %+v", job)
	}
}

func TestAddJobTypedPayloadNamesItsTask(t *testing.T) {
	t.Parallel()
	b := setup(t)
	job, err := b.utils.AddJob(b.ctx, sendEmail{To: "a@example.com"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	row := b.job(t, job.ID)
	if row.Task != "send_email" {
		t.Fatalf("task = %q", row.Task)
	}
	mustJSONEqual(t, row.Payload, `{"to":"a@example.com"}`)
}

func TestAddJobStoresEverySpecField(t *testing.T) {
	t.Parallel()
	b := setup(t)
	runAt := time.Date(2031, 3, 4, 5, 6, 7, 123456000, time.FixedZone("x", 3600))
	job, err := b.utils.AddRawJob(b.ctx, "spec", json.RawMessage(`{"a":[1,2]}`), &core.JobSpec{
		QueueName: "emails", RunAt: runAt, MaxAttempts: 3, Priority: -7, JobKey: "key-1", Flags: []string{"b", "a"},
	})
	if err != nil {
		t.Fatal(err)
	}
	row := b.job(t, job.ID)
	if deref(row.Queue) != "emails" || !row.RunAt.Equal(runAt) || row.MaxAttempts != 3 || row.Priority != -7 || deref(row.Key) != "key-1" {
		t.Fatalf("row = %+v", row)
	}
	mustJSONEqual(t, deref(row.Flags).(string), `{"a":true,"b":true}`)
	mustJSONEqual(t, row.Payload, `{"a":[1,2]}`)
	if job.QueueName != "emails" || !slices.Equal(job.Flags, []string{"a", "b"}) || job.Priority != -7 || job.Key != "key-1" {
		t.Fatalf("returned job = %+v", job)
	}
}

func TestJobKeyReplaceResetsWaitingJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	t1 := time.Now().Add(time.Hour).Truncate(time.Microsecond)
	t2 := t1.Add(time.Hour)
	first, err := b.utils.AddRawJob(b.ctx, "a", map[string]int{"v": 1}, &core.JobSpec{JobKey: "k", RunAt: t1, QueueName: "q1"})
	if err != nil {
		t.Fatal(err)
	}
	b.exec(t, "update S._private_jobs set attempts = 3, last_error = 'boom' where id = $1", first.ID)
	second, err := b.utils.AddRawJob(b.ctx, "b", map[string]int{"v": 2}, &core.JobSpec{JobKey: "k", RunAt: t2, Priority: 4})
	if err != nil {
		t.Fatal(err)
	}
	if second.ID != first.ID {
		t.Fatalf("replace made a new job %d, want %d", second.ID, first.ID)
	}
	rows := b.jobs(t)
	if len(rows) != 1 {
		t.Fatalf("%d jobs, want 1", len(rows))
	}
	r := rows[0]
	if r.Task != "b" || r.Attempts != 0 || r.LastError != nil || !r.RunAt.Equal(t2) || r.Revision != 1 || r.Queue != nil || r.Priority != 4 {
		t.Fatalf("replaced row = %+v", r)
	}
	mustJSONEqual(t, r.Payload, `{"v":2}`)
}

func TestJobKeyPreserveRunAtKeepsRunAtOnlyBeforeFirstAttempt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	t1 := time.Now().Add(time.Hour).Truncate(time.Microsecond)
	t2 := t1.Add(time.Hour)
	spec := func(at time.Time) *core.JobSpec {
		return &core.JobSpec{JobKey: "debounce", JobKeyMode: core.PreserveRunAt, RunAt: at}
	}
	job, err := b.utils.AddRawJob(b.ctx, "t", nil, spec(t1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.utils.AddRawJob(b.ctx, "t", nil, spec(t2)); err != nil {
		t.Fatal(err)
	}
	if got := b.job(t, job.ID).RunAt; !got.Equal(t1) {
		t.Fatalf("run_at = %v, want the original %v", got, t1)
	}
	b.exec(t, "update S._private_jobs set attempts = 1 where id = $1", job.ID)
	if _, err := b.utils.AddRawJob(b.ctx, "t", nil, spec(t2)); err != nil {
		t.Fatal(err)
	}
	if got := b.job(t, job.ID); !got.RunAt.Equal(t2) || got.Attempts != 0 {
		t.Fatalf("after an attempt: run_at = %v attempts = %d, want %v and 0", got.RunAt, got.Attempts, t2)
	}
}

func TestJobKeyDetachesLockedOrFailedHolder(t *testing.T) {
	t.Parallel()
	for name, hold := range map[string]string{
		"locked":               "update S._private_jobs set locked_at = now(), locked_by = 'w1' where id = $1",
		"permanently failed":   "update S._private_jobs set attempts = max_attempts, last_error = 'dead' where id = $1",
		"locked (preserve)":    "update S._private_jobs set locked_at = now(), locked_by = 'w1' where id = $1",
		"failed (via add_job)": "update S._private_jobs set attempts = max_attempts where id = $1",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			mode := core.Replace
			if strings.Contains(name, "preserve") {
				mode = core.PreserveRunAt
			}
			old, err := b.utils.AddRawJob(b.ctx, "t", map[string]int{"v": 1}, &core.JobSpec{JobKey: "k", MaxAttempts: 5})
			if err != nil {
				t.Fatal(err)
			}
			b.exec(t, hold, old.ID)
			var newID int64
			if strings.Contains(name, "add_job") {
				newID = int64(b.queryInt(t, `select (S.add_job('t', '{"v":2}', job_key := 'k')).id`))
			} else {
				nj, err := b.utils.AddRawJob(b.ctx, "t", map[string]int{"v": 2}, &core.JobSpec{JobKey: "k", JobKeyMode: mode})
				if err != nil {
					t.Fatal(err)
				}
				newID = nj.ID
			}
			if newID == old.ID {
				t.Fatal("the held job was overwritten")
			}
			o, n := b.job(t, old.ID), b.job(t, newID)
			if o.Key != nil || o.Attempts != o.MaxAttempts {
				t.Fatalf("old holder = %+v, want no key and no attempts left", o)
			}
			mustJSONEqual(t, o.Payload, `{"v":1}`)
			if deref(n.Key) != "k" || n.Attempts != 0 {
				t.Fatalf("new job = %+v", n)
			}
			mustJSONEqual(t, n.Payload, `{"v":2}`)
		})
	}
}

func TestUnsafeDedupeReturnsExistingJobUntouched(t *testing.T) {
	t.Parallel()
	b := setup(t)
	old, err := b.utils.AddRawJob(b.ctx, "t", map[string]int{"v": 1}, &core.JobSpec{JobKey: "k", Priority: 1})
	if err != nil {
		t.Fatal(err)
	}
	b.exec(t, "update S._private_jobs set locked_at = now(), locked_by = 'w1', attempts = 1 where id = $1", old.ID)
	before := b.job(t, old.ID)
	got, err := b.utils.AddRawJob(b.ctx, "other", map[string]int{"v": 2}, &core.JobSpec{JobKey: "k", JobKeyMode: core.UnsafeDedupe, Priority: 9})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != old.ID || got.TaskIdentifier != "t" {
		t.Fatalf("returned %+v, want the existing job %d of task t", got, old.ID)
	}
	after := b.job(t, old.ID)
	if after.Payload != before.Payload || after.Priority != 1 || after.Task != "t" || after.LockedBy == nil || after.Attempts != 1 ||
		!after.RunAt.Equal(before.RunAt) || after.Revision != before.Revision+1 {
		t.Fatalf("existing job changed: before %+v after %+v", before, after)
	}
	if n := len(b.jobs(t)); n != 1 {
		t.Fatalf("%d jobs, want 1", n)
	}
	// A new key inserts.
	fresh, err := b.utils.AddRawJob(b.ctx, "t", nil, &core.JobSpec{JobKey: "k2", JobKeyMode: core.UnsafeDedupe, QueueName: "dq"})
	if err != nil || fresh.Revision != 0 || fresh.QueueName != "dq" {
		t.Fatalf("fresh dedupe job = %+v, %v", fresh, err)
	}
}

func TestArrayPayloadsConcatenateOnKeyReplace(t *testing.T) {
	t.Parallel()
	b := setup(t)
	add := func(payload string) int64 {
		j, err := b.utils.AddRawJob(b.ctx, "batch", json.RawMessage(payload), &core.JobSpec{JobKey: "k"})
		if err != nil {
			t.Fatal(err)
		}
		return j.ID
	}
	id := add(`[1,{"a":2}]`)
	add(`[3]`)
	mustJSONEqual(t, b.job(t, id).Payload, `[1,{"a":2},3]`)
	add(`{"not":"array"}`)
	mustJSONEqual(t, b.job(t, id).Payload, `{"not":"array"}`)
	add(`[4]`)
	mustJSONEqual(t, b.job(t, id).Payload, `[4]`)
}

func TestAddJobsAddsManyInOneCall(t *testing.T) {
	t.Parallel()
	b := setup(t)
	runAt := time.Now().Add(time.Minute).Truncate(time.Microsecond)
	var in []core.NewJob
	for i := 0; i < 50; i++ {
		nj := core.NewJob{Identifier: []string{"a", "b", "c"}[i%3], Payload: map[string]int{"i": i}}
		if i%5 == 0 {
			nj.Spec = core.JobSpec{QueueName: "q" + string(rune('0'+i%2)), RunAt: runAt, MaxAttempts: 2, Priority: i, Flags: []string{"f"}}
		}
		if i == 7 {
			nj.Spec.JobKey = "seven"
		}
		in = append(in, nj)
	}
	out, err := b.utils.AddJobs(b.ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 50 {
		t.Fatalf("returned %d jobs", len(out))
	}
	rows := b.jobs(t)
	if len(rows) != 50 {
		t.Fatalf("%d rows", len(rows))
	}
	byPayload := map[int]jobRow{}
	for _, r := range rows {
		var p struct{ I int }
		if err := json.Unmarshal([]byte(r.Payload), &p); err != nil {
			t.Fatal(err)
		}
		byPayload[p.I] = r
	}
	for i, nj := range in {
		r, ok := byPayload[i]
		if !ok || r.Task != nj.Identifier {
			t.Fatalf("job %d: row %+v", i, r)
		}
		if i%5 == 0 && (deref(r.Queue) != nj.Spec.QueueName || !r.RunAt.Equal(runAt) || r.MaxAttempts != 2 || int(r.Priority) != i || deref(r.Flags) != `{"f": true}`) {
			t.Fatalf("job %d: row %+v", i, r)
		}
		if i == 7 && deref(r.Key) != "seven" {
			t.Fatalf("job 7 key = %v", deref(r.Key))
		}
	}
	for _, j := range out {
		if r := byPayload[mustI(t, j.Payload)]; r.ID != j.ID || r.Task != j.TaskIdentifier || deref(r.Queue) != nilIfEmpty(j.QueueName) {
			t.Fatalf("returned job %+v does not match row %+v", j, r)
		}
	}
}

func mustI(t *testing.T, p json.RawMessage) int {
	var v struct{ I int }
	if err := json.Unmarshal(p, &v); err != nil {
		t.Fatal(err)
	}
	return v.I
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func TestAddJobsPreserveRunAtAndKeyRules(t *testing.T) {
	t.Parallel()
	b := setup(t)
	t1 := time.Now().Add(time.Hour).Truncate(time.Microsecond)
	if _, err := b.utils.AddJobs(b.ctx, []core.NewJob{{Identifier: "t", Spec: core.JobSpec{JobKey: "k", RunAt: t1}}}); err != nil {
		t.Fatal(err)
	}
	out, err := b.utils.AddJobs(b.ctx, []core.NewJob{{Identifier: "t", Spec: core.JobSpec{JobKey: "k", RunAt: t1.Add(time.Hour), JobKeyMode: core.PreserveRunAt}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || !out[0].RunAt.Equal(t1) || out[0].Revision != 1 {
		t.Fatalf("preserve_run_at through AddJobs: %+v", out)
	}
	for name, jobs := range map[string][]core.NewJob{
		"duplicate key": {{Identifier: "t", Spec: core.JobSpec{JobKey: "d"}}, {Identifier: "t", Spec: core.JobSpec{JobKey: "d"}}},
		"mixed modes": {{Identifier: "t", Spec: core.JobSpec{JobKey: "x", JobKeyMode: core.PreserveRunAt}},
			{Identifier: "t", Spec: core.JobSpec{JobKey: "y"}}},
		"unsafe dedupe": {{Identifier: "t", Spec: core.JobSpec{JobKey: "z", JobKeyMode: core.UnsafeDedupe}}},
	} {
		if _, err := b.utils.AddJobs(b.ctx, jobs); !errors.Is(err, core.ErrInvalidInput) {
			t.Errorf("%s: err = %v, want ErrInvalidInput", name, err)
		}
	}
	if n := len(b.jobs(t)); n != 1 {
		t.Fatalf("%d jobs after rejected calls, want 1", n)
	}
}

// PostgreSQL's length() counts characters, so the schema takes names and
// keys of up to 128 and 512 characters whatever their size in bytes, as
// graphile-worker does.
func TestAddJobAcceptsNonASCIINamesUpToTheirCharacterLimits(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := strings.Repeat("é", core.MaxIdentifierLength) // 256 bytes
	queue := strings.Repeat("日", 100)                   // 300 bytes
	spec := core.JobSpec{QueueName: queue, JobKey: strings.Repeat("日", core.MaxJobKeyLength)}
	if _, err := b.utils.AddRawJob(b.ctx, id, nil, &spec); err != nil {
		t.Fatalf("AddRawJob: %v", err)
	}
	spec.QueueName, spec.JobKey = strings.Repeat("日", core.MaxQueueNameLength), "k-"+queue
	if _, err := b.utils.AddJobs(b.ctx, []core.NewJob{{Identifier: id, Spec: spec}}); err != nil {
		t.Fatalf("AddJobs: %v", err)
	}
	if n := b.queryInt(t, "select count(*) from S.jobs where length(task_identifier) = 128 and octet_length(task_identifier) = 256"); n != 2 {
		t.Fatalf("%d jobs stored with the 128-character identifier, want 2", n)
	}
	if n := b.queryInt(t, "select count(*) from S.jobs where length(key) = 512 and octet_length(queue_name) = 300"); n != 1 {
		t.Fatalf("%d jobs stored with the 512-character key in the 300-byte queue, want 1", n)
	}
}

func TestAddJobRejectsBadInputBeforeSQL(t *testing.T) {
	t.Parallel()
	b := setup(t)
	long := func(n int) string { return strings.Repeat("x", n) }
	cases := []struct {
		name       string
		identifier string
		payload    any
		spec       core.JobSpec
		field      string
	}{
		{"empty identifier", "", nil, core.JobSpec{}, "identifier"},
		{"long identifier", long(129), nil, core.JobSpec{}, "identifier"},
		{"long non-ASCII identifier", strings.Repeat("é", 129), nil, core.JobSpec{}, "identifier"},
		{"long queue", "t", nil, core.JobSpec{QueueName: long(129)}, "JobSpec.QueueName"},
		{"long non-ASCII queue", "t", nil, core.JobSpec{QueueName: strings.Repeat("日", 129)}, "JobSpec.QueueName"},
		{"long key", "t", nil, core.JobSpec{JobKey: long(513)}, "JobSpec.JobKey"},
		{"long non-ASCII key", "t", nil, core.JobSpec{JobKey: strings.Repeat("日", 513)}, "JobSpec.JobKey"},
		{"negative max attempts", "t", nil, core.JobSpec{MaxAttempts: -1}, "JobSpec.MaxAttempts"},
		{"huge max attempts", "t", nil, core.JobSpec{MaxAttempts: 40000}, "JobSpec.MaxAttempts"},
		{"priority out of range", "t", nil, core.JobSpec{Priority: 40000}, "JobSpec.Priority"},
		{"unknown key mode", "t", nil, core.JobSpec{JobKey: "k", JobKeyMode: "sometimes"}, "JobSpec.JobKeyMode"},
		{"key mode without key", "t", nil, core.JobSpec{JobKeyMode: core.Replace}, "JobSpec.JobKeyMode"},
		{"empty flag", "t", nil, core.JobSpec{Flags: []string{""}}, "JobSpec.Flags[0]"},
		{"unencodable payload", "t", make(chan int), core.JobSpec{}, "payload"},
		{"invalid raw JSON", "t", json.RawMessage(`{"a":`), core.JobSpec{}, "payload"},
	}
	for _, c := range cases {
		_, err := b.utils.AddRawJob(b.ctx, c.identifier, c.payload, &c.spec)
		var ve *core.ValidationError
		if !errors.As(err, &ve) || ve.Field != c.field || !errors.Is(err, core.ErrInvalidInput) {
			t.Errorf("%s: err = %v, want a ValidationError for %s", c.name, err, c.field)
			continue
		}
		if !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: message %q does not name %s", c.name, err, c.field)
		}
		_, err = b.utils.AddJobs(b.ctx, []core.NewJob{{Identifier: "ok"}, {Identifier: c.identifier, Payload: c.payload, Spec: c.spec}})
		// AddJobs names the same input as a field of its jobs argument.
		want := "jobs[1]." + strings.Replace(strings.Replace(c.field, "JobSpec.", "Spec.", 1), "identifier", "Identifier", 1)
		want = strings.Replace(want, ".payload", ".Payload", 1)
		if !errors.As(err, &ve) || ve.Field != want {
			t.Errorf("%s via AddJobs: err = %v, want a ValidationError for %s", c.name, err, want)
		}
	}
	if n := b.queryInt(t, "select count(*) from S._private_jobs") + b.queryInt(t, "select count(*) from S._private_tasks"); n != 0 {
		t.Fatalf("rejected input left %d rows", n)
	}
	if _, err := b.utils.AddJob(b.ctx, nil, nil); !errors.Is(err, core.ErrInvalidInput) {
		t.Fatalf("nil payload: %v", err)
	}
}

func TestSQLAddJobRejectsUnknownKeyMode(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.pool.Exec(b.ctx, b.sql(`select S.add_job('t', job_key := 'k', job_key_mode := 'bogus')`))
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "GWBKM" {
		t.Fatalf("err = %v, want SQLSTATE GWBKM", err)
	}
	// Without a key the mode is ignored, as graphile-worker does.
	b.exec(t, `select S.add_job('t', job_key_mode := 'bogus')`)
	if n := len(b.jobs(t)); n != 1 {
		t.Fatalf("%d jobs", n)
	}
}

// Not parallel: jobs:insert notifications are server-wide, and no parallel
// test runs while a sequential one does.
func TestAddJobsNotifiesWithCount(t *testing.T) {
	b := setup(t)
	conn, err := pgx.Connect(b.ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(b.ctx, `listen "jobs:insert"`); err != nil {
		t.Fatal(err)
	}
	recv := func() map[string]float64 {
		t.Helper()
		ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
		defer cancel()
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var p map[string]float64
		if err := json.Unmarshal([]byte(n.Payload), &p); err != nil {
			t.Fatalf("payload %q is not JSON: %v", n.Payload, err)
		}
		return p
	}
	if _, err := b.utils.AddJobs(b.ctx, []core.NewJob{{Identifier: "a"}, {Identifier: "b"}, {Identifier: "c"}}); err != nil {
		t.Fatal(err)
	}
	if p := recv(); p["count"] != 3 {
		t.Fatalf("payload = %v, want count 3", p)
	}
	if _, err := b.utils.AddRawJob(b.ctx, "a", nil, &core.JobSpec{JobKey: "k", JobKeyMode: core.UnsafeDedupe}); err != nil {
		t.Fatal(err)
	}
	if p := recv(); p["count"] != 1 {
		t.Fatalf("payload = %v, want count 1", p)
	}
	if _, err := b.utils.RemoveJob(b.ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if p := recv(); p["count"] != -1 {
		t.Fatalf("payload = %v, want count -1", p)
	}
}

// selection adds the jobs graphile-worker's own tests use to prove that the
// admin functions touch only their targets: a regular job, one locked by
// worker w1 just now, one whose lock is 5 hours old, a permanently failed
// one, one locked by w2, and an untouched one.
type selection struct{ regular, locked, stale, failed, lockedW2, untouched int64 }

func makeSelection(t *testing.T, b *bundle) selection {
	t.Helper()
	add := func(key, queue string) int64 {
		j, err := b.utils.AddRawJob(b.ctx, "sel", map[string]string{"key": key}, &core.JobSpec{JobKey: key, QueueName: queue})
		if err != nil {
			t.Fatal(err)
		}
		return j.ID
	}
	s := selection{add("regular", ""), add("locked", "qa"), add("stale", ""), add("failed", ""), add("lockedW2", "qb"), add("untouched", "")}
	b.exec(t, "update S._private_jobs set locked_at = now(), locked_by = 'w1', attempts = 1 where id = $1", s.locked)
	b.exec(t, "update S._private_job_queues set locked_at = now(), locked_by = 'w1' where queue_name = 'qa'")
	b.exec(t, "update S._private_jobs set locked_at = now() - interval '5 hours', locked_by = 'w1' where id = $1", s.stale)
	b.exec(t, "update S._private_jobs set attempts = max_attempts, last_error = 'dead' where id = $1", s.failed)
	b.exec(t, "update S._private_jobs set locked_at = now(), locked_by = 'w2' where id = $1", s.lockedW2)
	b.exec(t, "update S._private_job_queues set locked_at = now(), locked_by = 'w2' where queue_name = 'qb'")
	return s
}

func ids(jobs []*core.Job) []int64 {
	out := make([]int64, 0, len(jobs))
	for _, j := range jobs {
		out = append(out, j.ID)
	}
	slices.Sort(out)
	return out
}

func sorted(v ...int64) []int64 { slices.Sort(v); return v }

func TestCompleteJobsSkipsLockedJobs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := makeSelection(t, b)
	done, err := b.utils.CompleteJobs(b.ctx, []int64{s.regular, s.locked, s.stale, s.failed})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(done), sorted(s.regular, s.stale, s.failed); !slices.Equal(got, want) {
		t.Fatalf("completed %v, want %v", got, want)
	}
	var left []int64
	for _, r := range b.jobs(t) {
		left = append(left, r.ID)
	}
	if want := sorted(s.locked, s.lockedW2, s.untouched); !slices.Equal(sorted(left...), want) {
		t.Fatalf("left %v, want %v", left, want)
	}
}

func TestPermanentlyFailJobsSkipsLockedJobs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := makeSelection(t, b)
	failed, err := b.utils.PermanentlyFailJobs(b.ctx, []int64{s.regular, s.locked, s.stale}, "no longer wanted")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(failed), sorted(s.regular, s.stale); !slices.Equal(got, want) {
		t.Fatalf("failed %v, want %v", got, want)
	}
	for _, id := range []int64{s.regular, s.stale} {
		if r := b.job(t, id); deref(r.LastError) != "no longer wanted" || r.Attempts != r.MaxAttempts {
			t.Fatalf("job %d = %+v", id, r)
		}
	}
	if r := b.job(t, s.locked); r.LastError != nil || r.Attempts != 1 {
		t.Fatalf("locked job changed: %+v", r)
	}
	if r := b.job(t, s.untouched); r.LastError != nil || r.Attempts != 0 {
		t.Fatalf("untouched job changed: %+v", r)
	}
	if _, err := b.utils.PermanentlyFailJobs(b.ctx, []int64{s.untouched}, ""); err != nil {
		t.Fatal(err)
	}
	if r := b.job(t, s.untouched); deref(r.LastError) != "Manually marked as failed" {
		t.Fatalf("default reason = %v", deref(r.LastError))
	}
}

func TestRescheduleJobsSkipsLockedJobs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := makeSelection(t, b)
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	out, err := b.utils.RescheduleJobs(b.ctx, []int64{s.regular, s.locked}, core.RescheduleOptions{
		RunAt: &at, Priority: ptr(5), Attempts: ptr(2), MaxAttempts: ptr(9),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(out); !slices.Equal(got, []int64{s.regular}) {
		t.Fatalf("rescheduled %v, want [%d]", got, s.regular)
	}
	if r := b.job(t, s.regular); !r.RunAt.Equal(at) || r.Priority != 5 || r.Attempts != 2 || r.MaxAttempts != 9 {
		t.Fatalf("rescheduled row = %+v", r)
	}
	if r := b.job(t, s.locked); r.RunAt.Equal(at) || r.Priority != 0 || r.Attempts != 1 {
		t.Fatalf("locked job changed: %+v", r)
	}
	// Nil fields keep their values.
	if _, err := b.utils.RescheduleJobs(b.ctx, []int64{s.regular}, core.RescheduleOptions{Priority: ptr(-1)}); err != nil {
		t.Fatal(err)
	}
	if r := b.job(t, s.regular); !r.RunAt.Equal(at) || r.Priority != -1 || r.Attempts != 2 {
		t.Fatalf("partial reschedule = %+v", r)
	}
	if _, err := b.utils.RescheduleJobs(b.ctx, []int64{s.regular}, core.RescheduleOptions{MaxAttempts: ptr(0)}); !errors.Is(err, core.ErrInvalidInput) {
		t.Fatalf("max attempts 0: %v", err)
	}
}

func TestRemoveJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := makeSelection(t, b)
	removed, err := b.utils.RemoveJob(b.ctx, "regular")
	if err != nil || removed.ID != s.regular {
		t.Fatalf("remove regular: %+v, %v", removed, err)
	}
	held, err := b.utils.RemoveJob(b.ctx, "locked")
	if err != nil || held.ID != s.locked {
		t.Fatalf("remove locked: %+v, %v", held, err)
	}
	if r := b.job(t, s.locked); r.Key != nil || r.Attempts != r.MaxAttempts || r.LockedBy == nil {
		t.Fatalf("a running job must stay, without key and attempts: %+v", r)
	}
	for _, r := range b.jobs(t) {
		if r.ID == s.regular {
			t.Fatal("regular job still there")
		}
	}
	if _, err := b.utils.RemoveJob(b.ctx, "nope"); !errors.Is(err, core.ErrJobNotFound) {
		t.Fatalf("missing key: %v", err)
	}
}

func TestForceUnlockWorkersUnlocksOnlyThoseWorkers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := makeSelection(t, b)
	if err := b.utils.ForceUnlockWorkers(b.ctx, []string{"w1"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{s.locked, s.stale} {
		if r := b.job(t, id); r.LockedAt != nil || r.LockedBy != nil {
			t.Fatalf("job %d still locked: %+v", id, r)
		}
	}
	if r := b.job(t, s.lockedW2); deref(r.LockedBy) != "w2" {
		t.Fatalf("w2's job unlocked: %+v", r)
	}
	if n := b.queryInt(t, "select count(*) from S._private_job_queues where locked_by is not null"); n != 1 {
		t.Fatalf("%d queues locked, want only w2's", n)
	}
	if n := b.queryInt(t, "select count(*) from S._private_job_queues where queue_name = 'qb' and locked_by = 'w2'"); n != 1 {
		t.Fatal("w2's queue unlocked")
	}
}

func TestCleanup(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := makeSelection(t, b)
	// A locked, permanently failed job must survive DELETE_PERMAFAILED_JOBS.
	b.exec(t, "update S._private_jobs set attempts = max_attempts where id = $1", s.lockedW2)
	for _, id := range []string{"unused_keep", "unused_drop", "live_workers", "dead_workers"} {
		b.exec(t, "insert into S._private_tasks (identifier) values ($1)", id)
	}
	// A live worker caches the id of its task; a dead one's is free to go.
	b.registerWorker(t, testkit.RegisteredWorker{ID: "pool-live", Tasks: []string{"live_workers"}})
	b.registerWorker(t, testkit.RegisteredWorker{ID: "pool-dead", Tasks: []string{"dead_workers"}, HeartbeatAgo: time.Hour})
	b.exec(t, "insert into S._private_job_queues (queue_name) values ('empty'), ('empty_locked')")
	b.exec(t, "update S._private_job_queues set locked_at = now(), locked_by = 'w3' where queue_name = 'empty_locked'")

	if err := b.utils.Cleanup(b.ctx, core.CleanupOptions{Tasks: []core.CleanupTask{"NOPE"}}); !errors.Is(err, core.ErrInvalidInput) {
		t.Fatalf("unknown task: %v", err)
	}
	if err := b.utils.Cleanup(b.ctx, core.CleanupOptions{
		Tasks:                 []core.CleanupTask{core.DeletePermafailedJobs, core.GCTaskIdentifiers, core.GCJobQueues},
		TaskIdentifiersToKeep: []string{"unused_keep"},
	}); err != nil {
		t.Fatal(err)
	}
	var left []int64
	for _, r := range b.jobs(t) {
		left = append(left, r.ID)
	}
	if want := sorted(s.regular, s.locked, s.stale, s.lockedW2, s.untouched); !slices.Equal(sorted(left...), want) {
		t.Fatalf("jobs left %v, want %v", left, want)
	}
	tasks := b.strings(t, "select identifier from S._private_tasks order by 1")
	if !slices.Equal(tasks, []string{"live_workers", "sel", "unused_keep"}) {
		t.Fatalf("tasks = %v", tasks)
	}
	queues := b.strings(t, "select queue_name from S._private_job_queues order by 1")
	if !slices.Equal(queues, []string{"empty_locked", "qa", "qb"}) {
		t.Fatalf("queues = %v", queues)
	}
}

func (b *bundle) strings(t *testing.T, q string) []string {
	t.Helper()
	rows, err := b.pool.Query(b.ctx, b.sql(q))
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestJobsViewColumns(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cols := b.strings(t, "select column_name::text from information_schema.columns where table_schema = '"+
		strings.ReplaceAll(b.schema, "'", "''")+"' and table_name = 'jobs' order by ordinal_position")
	want := []string{"id", "queue_name", "task_identifier", "priority", "run_at", "attempts", "max_attempts", "last_error",
		"created_at", "updated_at", "key", "locked_at", "locked_by", "revision", "flags"}
	if !slices.Equal(cols, want) {
		t.Fatalf("view columns = %v, want %v (and no payload)", cols, want)
	}
	j, err := b.utils.AddRawJob(b.ctx, "v", nil, &core.JobSpec{QueueName: "vq"})
	if err != nil {
		t.Fatal(err)
	}
	var task, queue string
	if err := b.pool.QueryRow(b.ctx, b.sql("select task_identifier, queue_name from S.jobs where id = $1"), j.ID).Scan(&task, &queue); err != nil || task != "v" || queue != "vq" {
		t.Fatalf("view row: %q %q %v", task, queue, err)
	}
}

// Each client call on a transaction the caller holds takes effect with the
// caller's commit and not at all with its rollback.
func TestUtilsOnCallerTransaction(t *testing.T) {
	t.Parallel()
	calls := map[string]struct {
		call  func(ctx context.Context, u *core.Utils, s selection) error
		check func(t *testing.T, b *bundle, s selection) bool // reports whether the effect is visible
	}{
		"AddRawJob": {
			func(ctx context.Context, u *core.Utils, _ selection) error {
				_, err := u.AddRawJob(ctx, "in_tx", nil, nil)
				return err
			},
			func(t *testing.T, b *bundle, _ selection) bool {
				return b.queryInt(t, "select count(*) from S.jobs where task_identifier = 'in_tx'") == 1
			},
		},
		"AddJobs": {
			func(ctx context.Context, u *core.Utils, _ selection) error {
				_, err := u.AddJobs(ctx, []core.NewJob{{Identifier: "in_tx"}, {Identifier: "in_tx"}})
				return err
			},
			func(t *testing.T, b *bundle, _ selection) bool {
				return b.queryInt(t, "select count(*) from S.jobs where task_identifier = 'in_tx'") == 2
			},
		},
		"CompleteJobs": {
			func(ctx context.Context, u *core.Utils, s selection) error {
				_, err := u.CompleteJobs(ctx, []int64{s.regular})
				return err
			},
			func(t *testing.T, b *bundle, s selection) bool {
				return b.queryInt(t, "select count(*) from S.jobs where id = $1", s.regular) == 0
			},
		},
		"PermanentlyFailJobs": {
			func(ctx context.Context, u *core.Utils, s selection) error {
				_, err := u.PermanentlyFailJobs(ctx, []int64{s.regular}, "tx")
				return err
			},
			func(t *testing.T, b *bundle, s selection) bool {
				return b.queryInt(t, "select count(*) from S.jobs where id = $1 and last_error = 'tx'", s.regular) == 1
			},
		},
		"RescheduleJobs": {
			func(ctx context.Context, u *core.Utils, s selection) error {
				_, err := u.RescheduleJobs(ctx, []int64{s.regular}, core.RescheduleOptions{Priority: ptr(42)})
				return err
			},
			func(t *testing.T, b *bundle, s selection) bool {
				return b.queryInt(t, "select count(*) from S.jobs where id = $1 and priority = 42", s.regular) == 1
			},
		},
		"RemoveJob": {
			func(ctx context.Context, u *core.Utils, _ selection) error {
				_, err := u.RemoveJob(ctx, "regular")
				return err
			},
			func(t *testing.T, b *bundle, s selection) bool {
				return b.queryInt(t, "select count(*) from S.jobs where id = $1", s.regular) == 0
			},
		},
		"ForceUnlockWorkers": {
			func(ctx context.Context, u *core.Utils, _ selection) error {
				return u.ForceUnlockWorkers(ctx, []string{"w1"})
			},
			func(t *testing.T, b *bundle, s selection) bool {
				return b.queryInt(t, "select count(*) from S.jobs where id = $1 and locked_by is null", s.locked) == 1
			},
		},
		"Cleanup": {
			func(ctx context.Context, u *core.Utils, _ selection) error {
				return u.Cleanup(ctx, core.CleanupOptions{Tasks: []core.CleanupTask{core.DeletePermafailedJobs}})
			},
			func(t *testing.T, b *bundle, s selection) bool {
				return b.queryInt(t, "select count(*) from S.jobs where id = $1", s.failed) == 0
			},
		},
	}
	for name, c := range calls {
		for _, commit := range []bool{true, false} {
			t.Run(name+map[bool]string{true: "/commit", false: "/rollback"}[commit], func(t *testing.T) {
				t.Parallel()
				b := setup(t)
				s := makeSelection(t, b)
				tx, err := b.pool.Begin(b.ctx)
				if err != nil {
					t.Fatal(err)
				}
				if err := c.call(b.ctx, b.utils.WithTx(pgxdriver.Tx(tx)), s); err != nil {
					t.Fatal(err)
				}
				if c.check(t, b, s) {
					t.Fatal("effect visible outside the transaction before commit")
				}
				if commit {
					err = tx.Commit(b.ctx)
				} else {
					err = tx.Rollback(b.ctx)
				}
				if err != nil {
					t.Fatal(err)
				}
				if got := c.check(t, b, s); got != commit {
					t.Fatalf("effect visible = %v after commit=%v", got, commit)
				}
			})
		}
	}
}

// AddJobs takes a plain-INSERT path for keyless jobs; its rows must be the
// ones graphile-worker's add_jobs makes from the same specs.
func TestAddJobsFastPathMatchesAddJobsFunction(t *testing.T) {
	t.Parallel()
	b := setup(t)
	at := time.Date(2030, 5, 6, 7, 8, 9, 123456000, time.UTC)
	var specs []core.NewJob
	var js []map[string]any
	for i := 0; i < 12; i++ {
		s := core.JobSpec{RunAt: at.Add(time.Duration(i) * time.Second), Priority: i%3 - 1}
		if i%2 == 0 {
			s.QueueName = fmt.Sprintf("q%d", i%4)
		}
		if i%3 == 0 {
			s.MaxAttempts = 7
			s.Flags = []string{"x", "y"}
		}
		payload := map[string]any{"i": i, "nested": []any{1, "two", nil}}
		specs = append(specs, core.NewJob{Identifier: fmt.Sprintf("task%d", i%3), Payload: payload, Spec: s})
		m := map[string]any{"identifier": fmt.Sprintf("task%d", i%3), "payload": payload, "run_at": s.RunAt, "priority": s.Priority}
		if s.QueueName != "" {
			m["queue_name"] = s.QueueName
		}
		if s.MaxAttempts != 0 {
			m["max_attempts"] = s.MaxAttempts
		}
		if len(s.Flags) > 0 {
			m["flags"] = s.Flags
		}
		js = append(js, m)
	}
	if _, err := b.utils.AddJobs(b.ctx, specs); err != nil {
		t.Fatal(err)
	}
	fast := b.jobs(t)
	b.exec(t, "delete from S._private_jobs")
	raw, _ := json.Marshal(js)
	b.exec(t, "select S.add_jobs(array(select s from json_populate_recordset(null::S.job_spec, $1::json) s))", string(raw))
	slow := b.jobs(t)
	norm := func(rows []jobRow) []string {
		var out []string
		for _, r := range rows {
			var p any
			_ = json.Unmarshal([]byte(r.Payload), &p)
			out = append(out, fmt.Sprintf("%s|%v|%v|%d|%s|%d|%d|%v|%v|%v|%d|%v", r.Task, deref(r.Queue), p, r.Priority,
				r.RunAt.UTC().Format(time.RFC3339Nano), r.Attempts, r.MaxAttempts, deref(r.LastError), deref(r.Key), deref(r.LockedBy), r.Revision, deref(r.Flags)))
		}
		slices.Sort(out)
		return out
	}
	if f, s := norm(fast), norm(slow); !slices.Equal(f, s) {
		t.Fatalf("fast path rows differ from add_jobs:\nfast: %v\nslow: %v", f, s)
	}
}

func TestConcurrentBulkInsertsOfNewNamesLoseNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const writers, per = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var jobs []core.NewJob
			for i := 0; i < per; i++ {
				// Every writer creates the same new tasks and queues at once.
				jobs = append(jobs, core.NewJob{Identifier: fmt.Sprintf("new%d", i%5), Spec: core.JobSpec{QueueName: fmt.Sprintf("nq%d", i%3)}})
			}
			out, err := b.utils.AddJobs(b.ctx, jobs)
			if err == nil && len(out) != per {
				err = fmt.Errorf("AddJobs returned %d jobs, want %d", len(out), per)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := b.queryInt(t, "select count(*) from S._private_jobs where job_queue_id is not null"); n != writers*per {
		t.Fatalf("%d jobs with their queue, want %d", n, writers*per)
	}
	if n := b.queryInt(t, "select count(*) from S._private_tasks"); n != 5 {
		t.Fatalf("%d tasks, want 5", n)
	}
}
