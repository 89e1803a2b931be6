package core_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/internal/testkit"
)

// sqlID runs a statement returning one job id.
func (b *bundle) sqlID(t *testing.T, s string, args ...any) int64 {
	t.Helper()
	var id int64
	if err := b.pool.QueryRow(b.ctx, b.sql(s), args...).Scan(&id); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return id
}

// jobIDs are the jobs' ids in their order.
func jobIDs(jobs []*core.Job) []int64 {
	out := make([]int64, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	return out
}

// stateJobs is one job in each state, added three ways: by gworker, by SQL
// add_job and by graphile-worker's (Node's) add_jobs with job_spec rows.
type stateJobs struct {
	ready, scheduled, running, retrying, failed int64
}

func addStateJobs(t *testing.T, b *bundle) stateJobs {
	t.Helper()
	var s stateJobs
	s.ready = b.add(t, "mail", map[string]any{"user": 1, "kind": "welcome"}, &core.JobSpec{QueueName: "q1", Flags: []string{"a", "b"}}).ID
	s.scheduled = b.sqlID(t, `select id from S.add_job('mail', '{"user": 2}'::json, run_at := now() + interval '1 hour', job_key := 'k-sched')`)
	s.running = b.sqlID(t, `select id from S.add_jobs(array[row('resize', '{"user": 1}'::json, 'q2', null, null, null, null, array['a'])::S.job_spec])`)
	b.exec(t, "update S._private_jobs set locked_at = now(), locked_by = 'pool-w1', attempts = 1 where id = $1", s.running)
	s.retrying = b.add(t, "resize", map[string]any{"user": 3}, &core.JobSpec{QueueName: "q1"}).ID
	b.exec(t, "update S._private_jobs set attempts = 2, last_error = 'Boom: Disk FULL', run_at = now() + interval '5 minutes' where id = $1", s.retrying)
	s.failed = b.sqlID(t, `select id from S.add_jobs(array[row('mail', '{"user": 4}'::json, null, null, 3, 'k-failed', null, null)::S.job_spec])`)
	b.exec(t, "update S._private_jobs set attempts = 3, last_error = 'gave up' where id = $1", s.failed)
	return s
}

func TestListJobsFiltersEachStateAndField(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := addStateJobs(t, b)
	all := []int64{s.ready, s.scheduled, s.running, s.retrying, s.failed}
	cases := []struct {
		name   string
		filter core.JobFilter
		want   []int64
	}{
		{"none", core.JobFilter{}, all},
		{"ready", core.JobFilter{States: []core.JobState{core.JobStateReady}}, []int64{s.ready}},
		{"scheduled", core.JobFilter{States: []core.JobState{core.JobStateScheduled}}, []int64{s.scheduled}},
		{"running", core.JobFilter{States: []core.JobState{core.JobStateRunning}}, []int64{s.running}},
		{"retrying", core.JobFilter{States: []core.JobState{core.JobStateRetrying}}, []int64{s.retrying}},
		{"failed", core.JobFilter{States: []core.JobState{core.JobStateFailed}}, []int64{s.failed}},
		{"two states", core.JobFilter{States: []core.JobState{core.JobStateFailed, core.JobStateReady}}, []int64{s.ready, s.failed}},
		{"ids", core.JobFilter{IDs: []int64{s.failed, s.ready, math.MaxInt64}}, []int64{s.ready, s.failed}},
		{"task", core.JobFilter{Tasks: []string{"resize"}}, []int64{s.running, s.retrying}},
		{"tasks", core.JobFilter{Tasks: []string{"resize", "mail", "nobody"}}, all},
		{"unknown task", core.JobFilter{Tasks: []string{"nobody"}}, nil},
		{"queue", core.JobFilter{Queues: []string{"q1"}}, []int64{s.ready, s.retrying}},
		{"queues", core.JobFilter{Queues: []string{"q1", "q2"}}, []int64{s.ready, s.running, s.retrying}},
		{"key", core.JobFilter{Key: "k-sched"}, []int64{s.scheduled}},
		{"locked by", core.JobFilter{LockedBy: "pool-w1"}, []int64{s.running}},
		{"flag", core.JobFilter{Flags: []string{"a"}}, []int64{s.ready, s.running}},
		{"all flags", core.JobFilter{Flags: []string{"a", "b"}}, []int64{s.ready}},
		{"payload", core.JobFilter{PayloadContains: json.RawMessage(`{"user": 1}`)}, []int64{s.ready, s.running}},
		{"payload two keys", core.JobFilter{PayloadContains: json.RawMessage(`{"user": 1, "kind": "welcome"}`)}, []int64{s.ready}},
		{"error text", core.JobFilter{ErrorContains: "disk full"}, []int64{s.retrying}},
		{"error with % and _", core.JobFilter{ErrorContains: "%_"}, nil},
		{"combined", core.JobFilter{Tasks: []string{"mail"}, States: []core.JobState{core.JobStateScheduled, core.JobStateFailed}, Key: "k-failed"}, []int64{s.failed}},
	}
	for _, c := range cases {
		page, err := b.utils.ListJobs(b.ctx, core.ListJobsOptions{Filter: c.filter})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		want := slices.Clone(c.want)
		slices.Sort(want)
		slices.Reverse(want) // newest first
		if got := jobIDs(page.Jobs); !slices.Equal(got, want) {
			t.Errorf("%s: ListJobs = %v, want %v", c.name, got, want)
		}
		if page.Next != "" || page.Prev != "" {
			t.Errorf("%s: a single page has cursors %q, %q", c.name, page.Next, page.Prev)
		}
		n, err := b.utils.CountJobs(b.ctx, c.filter)
		if err != nil || n != int64(len(c.want)) {
			t.Errorf("%s: CountJobs = %d, %v; want %d", c.name, n, err, len(c.want))
		}
	}

	// The jobs read back whole, with their names, and the state each
	// has by Job.State agrees with the filters.
	page, err := b.utils.ListJobs(b.ctx, core.ListJobsOptions{OldestFirst: true})
	if err != nil {
		t.Fatal(err)
	}
	now := b.dbNow(t)
	wantStates := []core.JobState{core.JobStateReady, core.JobStateScheduled, core.JobStateRunning, core.JobStateRetrying, core.JobStateFailed}
	for i, j := range page.Jobs {
		if j.ID != all[i] || j.State(now) != wantStates[i] {
			t.Errorf("job %d: id %d state %s, want %d %s", i, j.ID, j.State(now), all[i], wantStates[i])
		}
	}
	r := page.Jobs[2]
	if r.TaskIdentifier != "resize" || r.QueueName != "q2" || r.LockedBy != "pool-w1" || r.LockedAt == nil || !slices.Equal(r.Flags, []string{"a"}) {
		t.Errorf("running job reads %+v", r)
	}
	got, err := b.utils.GetJob(b.ctx, s.failed)
	if err != nil || got.Key != "k-failed" || got.TaskIdentifier != "mail" || got.LastError == nil || *got.LastError != "gave up" || got.MaxAttempts != 3 {
		t.Fatalf("GetJob = %+v, %v", got, err)
	}
	mustJSONEqual(t, string(got.Payload), `{"user": 4}`)
	if _, err := b.utils.GetJob(b.ctx, math.MaxInt64); !errors.Is(err, core.ErrJobNotFound) {
		t.Fatalf("GetJob of a missing id: %v", err)
	}
}

func TestListJobsRejectsBadOptions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, c := range []struct {
		opts  core.ListJobsOptions
		field string
	}{
		{core.ListJobsOptions{Filter: core.JobFilter{States: []core.JobState{"done"}}}, "JobFilter.States[0]"},
		{core.ListJobsOptions{Filter: core.JobFilter{Tasks: []string{"a", ""}}}, "JobFilter.Tasks[1]"},
		{core.ListJobsOptions{Filter: core.JobFilter{PayloadContains: json.RawMessage(`{"a":`)}}, "JobFilter.PayloadContains"},
		{core.ListJobsOptions{Limit: core.MaxPageSize + 1}, "ListJobsOptions.Limit"},
		{core.ListJobsOptions{Limit: -1}, "ListJobsOptions.Limit"},
		{core.ListJobsOptions{After: "x"}, "ListJobsOptions.After"},
		{core.ListJobsOptions{After: "1", Before: "2"}, "ListJobsOptions.Before"},
	} {
		_, err := b.utils.ListJobs(b.ctx, c.opts)
		var ve *core.ValidationError
		if !errors.As(err, &ve) || ve.Field != c.field {
			t.Errorf("ListJobs(%+v) = %v, want a ValidationError on %s", c.opts, err, c.field)
		}
	}
}

// walk pages through the listing from the first page (forward) or from
// the last (backward, following Prev), calling between after each page.
func walk(t *testing.T, b *bundle, opts core.ListJobsOptions, backward bool, between func()) []int64 {
	t.Helper()
	var seen []int64
	if backward {
		// Find the last page first.
		for {
			page, err := b.utils.ListJobs(b.ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			if page.Next == "" {
				break
			}
			opts.After = page.Next
		}
	}
	for range 1000 {
		page, err := b.utils.ListJobs(b.ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Jobs) > opts.Limit {
			t.Fatalf("page of %d jobs, limit %d", len(page.Jobs), opts.Limit)
		}
		if backward {
			seen = append(jobIDs(page.Jobs), seen...)
		} else {
			seen = append(seen, jobIDs(page.Jobs)...)
		}
		between()
		cursor := page.Next
		if backward {
			cursor = page.Prev
		}
		if cursor == "" {
			return seen
		}
		opts.After, opts.Before = "", ""
		if backward {
			opts.Before = cursor
		} else {
			opts.After = cursor
		}
	}
	t.Fatal("pagination does not end")
	return nil
}

func TestListJobsPaginationIsStableWhileJobsComeAndGo(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name        string
		oldestFirst bool
		backward    bool
	}{{"newest first", false, false}, {"oldest first", true, false}, {"newest first, backward", false, true}, {"oldest first, backward", true, true}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			var stable, churn []int64
			for i := range 40 {
				j := b.add(t, "page", map[string]int{"i": i}, nil)
				b.add(t, "other", nil, nil) // filtered out
				if i%4 == 1 {
					churn = append(churn, j.ID) // removed while paging
				} else {
					stable = append(stable, j.ID)
				}
			}
			between := func() {
				// After each page one job of the initial set goes and a new
				// one comes.
				if len(churn) > 0 {
					b.exec(t, "delete from S._private_jobs where id = $1", churn[0])
					churn = churn[1:]
				}
				b.add(t, "page", nil, nil)
			}
			seen := walk(t, b, core.ListJobsOptions{Filter: core.JobFilter{Tasks: []string{"page"}}, Limit: 3, OldestFirst: c.oldestFirst}, c.backward, between)
			dup := map[int64]bool{}
			for _, id := range seen {
				if dup[id] {
					t.Fatalf("job %d listed twice: %v", id, seen)
				}
				dup[id] = true
			}
			for _, id := range stable {
				if !dup[id] {
					t.Fatalf("job %d, present throughout, missing from %v", id, seen)
				}
			}
			want := slices.Clone(seen)
			slices.Sort(want)
			if !c.oldestFirst {
				slices.Reverse(want)
			}
			if !slices.Equal(seen, want) {
				t.Fatalf("pages out of order: %v", seen)
			}
		})
	}
}

func TestListJobsCursorsBothWays(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var all []int64
	for range 7 {
		all = append(all, b.add(t, "c", nil, nil).ID)
	}
	list := func(opts core.ListJobsOptions) core.JobPage {
		t.Helper()
		opts.Limit = 3
		p, err := b.utils.ListJobs(b.ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p1 := list(core.ListJobsOptions{})
	p2 := list(core.ListJobsOptions{After: p1.Next})
	p3 := list(core.ListJobsOptions{After: p2.Next})
	if !slices.Equal(jobIDs(p1.Jobs), []int64{all[6], all[5], all[4]}) || !slices.Equal(jobIDs(p2.Jobs), []int64{all[3], all[2], all[1]}) ||
		!slices.Equal(jobIDs(p3.Jobs), []int64{all[0]}) || p1.Prev != "" || p3.Next != "" || p2.Prev == "" {
		t.Fatalf("pages %v %v %v (%+v %+v %+v)", jobIDs(p1.Jobs), jobIDs(p2.Jobs), jobIDs(p3.Jobs), p1, p2, p3)
	}
	back2 := list(core.ListJobsOptions{Before: p3.Prev})
	back1 := list(core.ListJobsOptions{Before: back2.Prev})
	if !slices.Equal(jobIDs(back2.Jobs), jobIDs(p2.Jobs)) || !slices.Equal(jobIDs(back1.Jobs), jobIDs(p1.Jobs)) || back1.Prev != "" || back1.Next != p1.Next {
		t.Fatalf("back: %v %v (%+v)", jobIDs(back2.Jobs), jobIDs(back1.Jobs), back1)
	}
	// Past the end: an empty page leads back to the last job.
	b.exec(t, "delete from S._private_jobs where id = $1", all[0])
	empty := list(core.ListJobsOptions{After: p2.Next})
	if len(empty.Jobs) != 0 || empty.Next != "" || empty.Prev == "" {
		t.Fatalf("empty page %+v", empty)
	}
	if back := list(core.ListJobsOptions{Before: empty.Prev}); !slices.Equal(jobIDs(back.Jobs), []int64{all[3], all[2], all[1]}) {
		t.Fatalf("back from the empty page: %v", jobIDs(back.Jobs))
	}
}

// recorder is an Executor that remembers the last query, to EXPLAIN it.
type recorder struct {
	core.Executor
	mu   sync.Mutex
	sql  string
	args []any
}

func (r *recorder) Query(ctx context.Context, sql string, args ...any) (core.Rows, error) {
	r.mu.Lock()
	if strings.Contains(sql, "order by j.id") { // the listing, not the name lookup
		r.sql, r.args = sql, args
	}
	r.mu.Unlock()
	return r.Executor.Query(ctx, sql, args...)
}

// explain returns the plan of the last listing, as text.
func (r *recorder) explain(t *testing.T, b *bundle) string {
	t.Helper()
	rows, err := b.db.Query(b.ctx, "explain "+r.sql, r.args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, line)
	}
	return strings.Join(plan, "\n")
}

// The first page of the common filters walks the primary key backwards
// and stops after the page: no scan and sort of the whole table.
func TestListJobsFirstPageWalksThePrimaryKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const n = 200_000
	b.exec(t, "select S.add_job('big_a'), S.add_job('big_b', queue_name := 'big_q')")
	b.exec(t, `insert into S._private_jobs (task_id, job_queue_id, payload, run_at, attempts, max_attempts, last_error, key, locked_at, locked_by)
		select case when i % 3 = 0 then tb.id else ta.id end,
		       case when i % 10 = 0 then q.id end,
		       json_build_object('i', i),
		       now() + case when i % 7 = 0 then interval '1 hour' else -interval '1 minute' end,
		       case when i % 50 = 0 then 25 when i % 11 = 0 then 1 else 0 end, 25,
		       case when i % 11 = 0 or i % 50 = 0 then 'error ' || i end,
		       case when i % 100 = 0 then 'key-' || i end,
		       case when i % 997 = 0 then now() end, case when i % 997 = 0 then 'pool-big' end
		from generate_series(1, $1::int) i,
		     (select id from S._private_tasks where identifier = 'big_a') ta,
		     (select id from S._private_tasks where identifier = 'big_b') tb,
		     (select id from S._private_job_queues where queue_name = 'big_q') q`, n)
	b.exec(t, "analyze S._private_jobs")
	rec := &recorder{Executor: b.db}
	u := b.utils.WithTx(rec)
	for _, c := range []struct {
		name   string
		opts   core.ListJobsOptions
		expect string
	}{
		{"default", core.ListJobsOptions{}, "Index Scan Backward using jobs_pkey1"},
		{"page 2", core.ListJobsOptions{After: "150000"}, "Index Scan Backward using jobs_pkey1"},
		{"oldest first", core.ListJobsOptions{OldestFirst: true}, "Index Scan using jobs_pkey1"},
		{"before", core.ListJobsOptions{Before: "150000"}, "Index Scan using jobs_pkey1"},
		{"ready", core.ListJobsOptions{Filter: core.JobFilter{States: []core.JobState{core.JobStateReady}}}, "Index Scan Backward using jobs_pkey1"},
		{"scheduled", core.ListJobsOptions{Filter: core.JobFilter{States: []core.JobState{core.JobStateScheduled}}}, "Index Scan Backward using jobs_pkey1"},
		{"retrying", core.ListJobsOptions{Filter: core.JobFilter{States: []core.JobState{core.JobStateRetrying}}}, "Index Scan Backward using jobs_pkey1"},
		{"failed", core.ListJobsOptions{Filter: core.JobFilter{States: []core.JobState{core.JobStateFailed}}}, "Index Scan Backward using jobs_pkey1"},
		{"task", core.ListJobsOptions{Filter: core.JobFilter{Tasks: []string{"big_b"}}}, "Index Scan Backward using jobs_pkey1"},
		{"queue", core.ListJobsOptions{Filter: core.JobFilter{Queues: []string{"big_q"}}}, "Index Scan Backward using jobs_pkey1"},
		{"task and state", core.ListJobsOptions{Filter: core.JobFilter{Tasks: []string{"big_a"}, States: []core.JobState{core.JobStateReady, core.JobStateRetrying}}}, "Index Scan Backward using jobs_pkey1"},
		{"key", core.ListJobsOptions{Filter: core.JobFilter{Key: "key-500"}}, "jobs_key_key1"},
		{"ids", core.ListJobsOptions{Filter: core.JobFilter{IDs: []int64{5, 50, 500}}}, "jobs_pkey1"},
	} {
		page, err := u.ListJobs(b.ctx, c.opts)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(page.Jobs) == 0 {
			t.Errorf("%s: no jobs", c.name)
		}
		plan := rec.explain(t, b)
		// A key or ids find their few rows by index, and may sort them.
		sorts := strings.Contains(plan, "Sort") && c.opts.Filter.Key == "" && c.opts.Filter.IDs == nil
		if !strings.Contains(plan, c.expect) || strings.Contains(plan, "Seq Scan on _private_jobs") || sorts {
			t.Errorf("%s: plan does not walk %s:\n%s", c.name, c.expect, plan)
		}
		if testing.Verbose() {
			t.Logf("%s:\n%s", c.name, plan)
		}
	}

	// Stats of the big table are estimated, and close.
	st, err := b.utils.JobStats(b.ctx, core.JobStatsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	exact, err := b.utils.JobStats(b.ctx, core.JobStatsOptions{ExactBelow: math.MaxInt64})
	if err != nil {
		t.Fatal(err)
	}
	if st.Exact || !exact.Exact || exact.Total != n+2 {
		t.Fatalf("estimated %v, exact %v %d", st.Exact, exact.Exact, exact.Total)
	}
	near := func(what string, got, want int64) {
		if math.Abs(float64(got-want)) > 0.1*float64(want)+50 {
			t.Errorf("%s: estimate %d, exact %d", what, got, want)
		}
	}
	near("total", st.Total, exact.Total)
	for _, s := range core.JobStates {
		near(string(s), st.ByState[s], exact.ByState[s])
	}
	near("big_b", st.ByTask["big_b"][core.JobStateReady], exact.ByTask["big_b"][core.JobStateReady])
	near("big_q", st.ByQueue["big_q"][core.JobStateReady], exact.ByQueue["big_q"][core.JobStateReady])

	// A filter action walks the primary key batch by batch too.
	failed := core.JobFilter{Queues: []string{"big_q"}, States: []core.JobState{core.JobStateFailed}}
	want, err := u.CountJobs(b.ctx, failed)
	if err != nil {
		t.Fatal(err)
	}
	res, err := u.RetryJobs(b.ctx, core.JobSelection{Filter: &failed})
	if err != nil || res.Changed != want || want < 3000 {
		t.Fatalf("RetryJobs = %d changed, %v; want %d", res.Changed, err, want)
	}
	plan := rec.explain(t, b)
	// (The one sort is of the batch's changed ids, for the result.)
	if !strings.Contains(plan, "Index Scan using jobs_pkey1") || !strings.Contains(plan, "Index Cond: (id > ") || strings.Contains(plan, "Seq Scan on _private_jobs") {
		t.Errorf("a batch of RetryJobs does not walk jobs_pkey1:\n%s", plan)
	}
	if testing.Verbose() {
		t.Logf("RetryJobs batch:\n%s", plan)
	}
}

func TestJobStatsExactAndEstimated(t *testing.T) {
	t.Parallel()
	b := setup(t)
	addStateJobs(t, b)
	st, err := b.utils.JobStats(b.ctx, core.JobStatsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := core.JobStats{Exact: true, Total: 5,
		ByState: core.StateCounts{core.JobStateReady: 1, core.JobStateScheduled: 1, core.JobStateRunning: 1, core.JobStateRetrying: 1, core.JobStateFailed: 1},
		ByTask: map[string]core.StateCounts{
			"mail":   {core.JobStateReady: 1, core.JobStateScheduled: 1, core.JobStateFailed: 1},
			"resize": {core.JobStateRunning: 1, core.JobStateRetrying: 1},
		},
		ByQueue: map[string]core.StateCounts{"q1": {core.JobStateReady: 1, core.JobStateRetrying: 1}, "q2": {core.JobStateRunning: 1}},
	}
	if fmt.Sprint(st) != fmt.Sprint(want) {
		t.Fatalf("JobStats =\n%v\nwant\n%v", st, want)
	}
	// Forced estimate: before ANALYZE the table's size is unknown and
	// sampled; after, it comes from the statistics. A small table is
	// sampled whole, so the numbers still match.
	for _, analyzed := range []bool{false, true} {
		if analyzed {
			b.exec(t, "analyze S._private_jobs")
		}
		est, err := b.utils.JobStats(b.ctx, core.JobStatsOptions{ExactBelow: 1})
		if err != nil {
			t.Fatal(err)
		}
		want.Exact = false
		if fmt.Sprint(est) != fmt.Sprint(want) {
			t.Fatalf("analyzed %v: JobStats(ExactBelow 1) =\n%v\nwant\n%v", analyzed, est, want)
		}
	}
	empty := setup(t)
	st, err = empty.utils.JobStats(empty.ctx, core.JobStatsOptions{ExactBelow: 1})
	if err != nil || !st.Exact || st.Total != 0 || len(st.ByState) != 5 {
		t.Fatalf("empty table: %+v, %v", st, err)
	}
}

func TestListQueuesTasksAndCrontabs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	addStateJobs(t, b)
	b.add(t, "send_emial", nil, nil) // a typo: nobody runs it
	b.exec(t, "update S._private_job_queues set locked_by = 'pool-w1', locked_at = now() where queue_name = 'q2'")
	b.exec(t, "insert into S._private_job_queues (queue_name) values ('empty_q')")

	queues, err := b.utils.ListQueues(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(len(queues))
	for _, q := range queues {
		got += fmt.Sprintf(" %s:%d:%s:%v", q.Name, q.Waiting, q.LockedBy, q.LockedAt != nil)
	}
	if want := "3 empty_q:0::false q1:2::false q2:0:pool-w1:true"; got != want {
		t.Fatalf("ListQueues = %s, want %s", got, want)
	}

	w, _ := b.worker(t, core.WorkerOptions{
		Tasks: []core.Task{
			core.RawTask("mail", func(context.Context, *core.Job) error { return nil }),
			core.RawTask("idle", func(context.Context, *core.Job) error { return nil }),
		},
		ForbiddenFlags: []string{"a"}, // keeps the ready job waiting
		PollInterval:   time.Hour,
	})
	stop := runInBackground(t, w)
	eventually(t, "the worker's row", func() bool { return b.workerRows(t, w.ID()) == 1 })
	b.deadWorker(t, "pool-dead", time.Hour)
	b.exec(t, "update S._private_gworker_workers set tasks = '{resize}' where worker_id = 'pool-dead'")

	tasks, err := b.utils.ListTasks(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	got = ""
	for _, ti := range tasks {
		got += fmt.Sprintf("%s:%d:%d:%v ", ti.Identifier, ti.Waiting, ti.Ready, ti.Workers)
	}
	want := fmt.Sprintf("idle:0:0:[%[1]s] mail:2:1:[%[1]s] resize:1:0:[] send_emial:1:1:[] ", w.ID())
	if got != want {
		t.Fatalf("ListTasks = %s\nwant %s", got, want)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	b.exec(t, `insert into S._private_known_crontabs (identifier, known_since, last_execution)
		values ('b_nightly', '2030-01-01T00:00:00Z', null), ('a_hourly', '2030-01-02T00:00:00Z', '2030-01-03T04:00:00Z')`)
	crons, err := b.utils.ListKnownCrontabs(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(crons) != 2 || crons[0].Identifier != "a_hourly" || crons[0].LastExecution == nil ||
		!crons[0].LastExecution.Equal(time.Date(2030, 1, 3, 4, 0, 0, 0, time.UTC)) ||
		crons[1].Identifier != "b_nightly" || crons[1].LastExecution != nil || !crons[1].KnownSince.Equal(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("ListKnownCrontabs = %+v", crons)
	}
}

// A schema gworker's registry does not cover (graphile-worker installed it,
// or an older gworker migrated it) lists tasks without workers.
func TestListTasksWithoutTheRegistry(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.add(t, "t", nil, nil)
	b.exec(t, "alter table S._private_gworker_workers drop column tasks")
	tasks, err := b.utils.ListTasks(b.ctx)
	if err != nil || len(tasks) != 1 || tasks[0].Workers != nil || tasks[0].Ready != 1 {
		t.Fatalf("without the tasks column: %+v, %v", tasks, err)
	}
	// A worker still registers (without its tasks).
	w, _ := b.worker(t, core.WorkerOptions{SkipMigrate: true, PollInterval: time.Hour,
		Tasks: []core.Task{core.RawTask("x", func(context.Context, *core.Job) error { return nil })}})
	stop := runInBackground(t, w)
	eventually(t, "the worker's row", func() bool { return b.workerRows(t, w.ID()) == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	b.exec(t, "drop table S._private_gworker_workers")
	if _, err := b.utils.ListTasks(b.ctx); err != nil {
		t.Fatalf("without the registry: %v", err)
	}
}

// ListLockHolders counts every holder's jobs and queues exactly, however
// many: more running jobs than a few pages of ListJobs, holders that only
// hold a queue, and holders that never registered (as graphile-worker's
// Node workers do not).
func TestListLockHoldersCountsExactly(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const nodeJobs, registeredJobs, idle = 5*core.MaxPageSize + 7, 150, 40
	if n := b.queryInt(t, `select count(*) from S.add_jobs(array(
		select row('bulk', json_build_object('n', g), null, null, null, null, null, null)::S.job_spec
		from generate_series(1, $1::int) g))`, nodeJobs+registeredJobs+idle); n != nodeJobs+registeredJobs+idle {
		t.Fatalf("added %d jobs", n)
	}
	t0 := time.Date(2024, 1, 2, 3, 0, 0, 0, time.UTC)
	lock := func(by string, n int, at time.Time) {
		t.Helper()
		b.exec(t, `update S._private_jobs set locked_by = $1, locked_at = $3, attempts = 1
			where id in (select id from S._private_jobs where locked_by is null order by id limit $2)`, by, n, at)
	}
	// A Node worker holds most jobs; the first one it took is its oldest
	// lock. A registered gworker worker holds fewer, all taken later.
	lock("pool-node", 1, t0.Add(2*time.Hour))
	lock("pool-node", nodeJobs-1, t0.Add(2*time.Hour+time.Minute))
	lock("pool-registered", registeredJobs, t0.Add(3*time.Hour))
	b.registerWorker(t, testkit.RegisteredWorker{ID: "pool-registered"})
	// Queues: two of the Node worker's, and one held by a worker whose job
	// is gone (completed by another hand), its oldest lock.
	b.exec(t, "insert into S._private_job_queues (queue_name) values ('qa'), ('qb'), ('qc'), ('free')")
	b.exec(t, "update S._private_job_queues set locked_by = 'pool-node', locked_at = $1 where queue_name in ('qa', 'qb')", t0.Add(4*time.Hour))
	b.exec(t, "update S._private_job_queues set locked_by = 'pool-queue-only', locked_at = $1 where queue_name = 'qc'", t0)

	describe := func(hs []core.LockHolder) string {
		s := ""
		for _, h := range hs {
			s += fmt.Sprintf("%s jobs=%d queues=%d oldest=%s registered=%v\n", h.ID, h.LockedJobs, h.LockedQueues,
				h.OldestLock.UTC().Format(time.TimeOnly), h.Registered)
		}
		return s
	}
	want := fmt.Sprintf(`pool-queue-only jobs=0 queues=1 oldest=03:00:00 registered=false
pool-node jobs=%d queues=2 oldest=05:00:00 registered=false
pool-registered jobs=%d queues=0 oldest=06:00:00 registered=true
`, nodeJobs, registeredJobs)
	hs, err := b.utils.ListLockHolders(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := describe(hs); got != want {
		t.Fatalf("ListLockHolders:\n%s\nwant:\n%s", got, want)
	}
	// The counts agree with the jobs' own rows.
	if n := b.queryInt(t, "select count(*) from S._private_jobs where locked_by = 'pool-node'"); int64(n) != hs[1].LockedJobs {
		t.Fatalf("pool-node holds %d jobs, ListLockHolders says %d", n, hs[1].LockedJobs)
	}

	// Without gworker's registry (graphile-worker installed the schema),
	// nobody is registered and the counts stay.
	b.exec(t, "drop table S._private_gworker_workers")
	hs, err = b.utils.ListLockHolders(b.ctx)
	if err != nil {
		t.Fatalf("without the registry: %v", err)
	}
	if got, want := describe(hs), strings.Replace(want, "registered=true", "registered=false", 1); got != want {
		t.Fatalf("ListLockHolders without the registry:\n%s\nwant:\n%s", got, want)
	}

	// Nothing locked, nothing listed.
	b.exec(t, "update S._private_jobs set locked_by = null, locked_at = null")
	b.exec(t, "update S._private_job_queues set locked_by = null, locked_at = null")
	if hs, err := b.utils.ListLockHolders(b.ctx); err != nil || len(hs) != 0 {
		t.Fatalf("with no lock: %+v, %v", hs, err)
	}
}
