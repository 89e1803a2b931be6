package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// JobState is where a job stands, derived from its row. The states are
// disjoint and are decided in this order: running (locked), failed (no
// attempts left), retrying (failed before, attempts left), then scheduled
// or ready by run_at.
type JobState string

const (
	// JobStateReady jobs are unlocked, have never failed and may run now
	// (run_at has passed).
	JobStateReady JobState = "ready"
	// JobStateScheduled jobs are unlocked, have never failed and wait for their
	// run_at.
	JobStateScheduled JobState = "scheduled"
	// JobStateRunning jobs are locked by a worker (locked_at is set). A lock
	// older than 4 hours belongs to a dead worker by graphile-worker's
	// rule, but the job still shows as running until the lock is freed.
	JobStateRunning JobState = "running"
	// JobStateRetrying jobs are unlocked, have failed at least once (attempts >
	// 0) and have attempts left; they run again at run_at, which may have
	// passed.
	JobStateRetrying JobState = "retrying"
	// JobStateFailed jobs are unlocked and have no attempts left (attempts >=
	// max_attempts): permanently failed, cancelled or removed while
	// running. They stay until removed or retried.
	JobStateFailed JobState = "failed"
)

// JobStates lists every JobState in the order UIs show them.
var JobStates = []JobState{JobStateReady, JobStateScheduled, JobStateRunning, JobStateRetrying, JobStateFailed}

// State returns the job's state at the time now (normally the database's
// clock; the job's RunAt is compared to it).
func (j *Job) State(now time.Time) JobState {
	switch {
	case j.LockedAt != nil:
		return JobStateRunning
	case j.Attempts >= j.MaxAttempts:
		return JobStateFailed
	case j.Attempts > 0:
		return JobStateRetrying
	case j.RunAt.After(now):
		return JobStateScheduled
	}
	return JobStateReady
}

// stateWhere is each state as a condition on the jobs table aliased j.
// is_available is graphile-worker's generated column: locked_at is null and
// attempts < max_attempts.
var stateWhere = map[JobState]string{
	JobStateRunning:   "j.locked_at is not null",
	JobStateFailed:    "(j.locked_at is null and j.attempts >= j.max_attempts)",
	JobStateRetrying:  "(j.is_available and j.attempts > 0)",
	JobStateScheduled: "(j.is_available and j.attempts = 0 and j.run_at > now())",
	JobStateReady:     "(j.is_available and j.attempts = 0 and j.run_at <= now())",
}

// stateCase is the state of the job aliased j as text; keep in step with
// stateWhere and Job.State.
const stateCase = `case when j.locked_at is not null then 'running'
  when j.attempts >= j.max_attempts then 'failed'
  when j.attempts > 0 then 'retrying'
  when j.run_at > now() then 'scheduled'
  else 'ready' end`

// JobFilter selects jobs. Every field set must match (AND); within a list
// field any element may match (OR), except Flags, where a job must carry
// all of them. The zero value matches every job.
//
// IDs and Key are looked up by index (jobs_pkey1, jobs_key_key1). Listings
// walk the primary key from the newest job and test the other fields on
// each row, stopping when the page is full: fast when matching jobs are
// common among recent ones, a scan of the table when they are rare.
// PayloadContains and ErrorContains are never served by an index
// (graphile-worker's schema has none on payload or last_error), so a
// filter on them alone reads rows until the page is full.
type JobFilter struct {
	// IDs are job ids.
	IDs []int64
	// States are job states (see JobState).
	States []JobState
	// Tasks are task identifiers.
	Tasks []string
	// Queues are queue names.
	Queues []string
	// Key is a job key.
	Key string
	// LockedBy is the id of the worker holding the job (its locked_by).
	LockedBy string
	// Flags: the job carries all of these flags.
	Flags []string
	// PayloadContains is JSON the payload contains (jsonb containment:
	// payload::jsonb @> PayloadContains), e.g. {"user_id": 42}.
	PayloadContains json.RawMessage
	// ErrorContains is text found in last_error, ignoring case.
	ErrorContains string
}

// Validate reports a bad filter as a *ValidationError naming the field:
// an unknown state, an empty task, queue or flag, a key that is too long,
// or PayloadContains that is not JSON.
func (f JobFilter) Validate() error {
	for i, s := range f.States {
		if _, ok := stateWhere[s]; !ok {
			return &ValidationError{Field: fmt.Sprintf("JobFilter.States[%d]", i), Value: string(s),
				Reason: "must be ready, scheduled, running, retrying or failed"}
		}
	}
	for _, l := range []struct {
		field string
		list  []string
	}{{"Tasks", f.Tasks}, {"Queues", f.Queues}, {"Flags", f.Flags}} {
		for i, s := range l.list {
			if s == "" {
				return &ValidationError{Field: fmt.Sprintf("JobFilter.%s[%d]", l.field, i), Reason: "must not be empty"}
			}
		}
	}
	if n := utf8.RuneCountInString(f.Key); n > MaxJobKeyLength {
		return &ValidationError{Field: "JobFilter.Key", Value: f.Key, Reason: fmt.Sprintf("is %d characters long; at most %d are allowed", n, MaxJobKeyLength)}
	}
	if len(f.PayloadContains) > 0 && !json.Valid(f.PayloadContains) {
		return &ValidationError{Field: "JobFilter.PayloadContains", Value: string(f.PayloadContains), Reason: "is not valid JSON"}
	}
	return nil
}

// sqlArgs numbers the parameters of a statement built piece by piece.
type sqlArgs []any

// add appends v and returns its placeholder, cast to typ.
func (a *sqlArgs) add(v any, typ string) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a)) + "::" + typ
}

// where returns the filter's conditions on the jobs table aliased j (and
// "true" when there are none), adding their arguments to a. Only plain
// argument types of the driver contract are used.
func (f JobFilter) where(r renderer, a *sqlArgs) string {
	var conds []string
	if len(f.IDs) > 0 {
		conds = append(conds, "j.id = any("+a.add(f.IDs, "bigint[]")+")")
	}
	if len(f.States) > 0 {
		s := ""
		for i, st := range uniq(f.States) {
			if i > 0 {
				s += " or "
			}
			s += stateWhere[st]
		}
		conds = append(conds, "("+s+")")
	}
	if len(f.Tasks) > 0 {
		conds = append(conds, r.render("j.task_id = any(array(select t.id from {{schema}}._private_tasks t where t.identifier = any("+
			a.add(f.Tasks, "text[]")+")))"))
	}
	if len(f.Queues) > 0 {
		conds = append(conds, r.render("j.job_queue_id = any(array(select q.id from {{schema}}._private_job_queues q where q.queue_name = any("+
			a.add(f.Queues, "text[]")+")))"))
	}
	if f.Key != "" {
		conds = append(conds, "j.key = "+a.add(f.Key, "text"))
	}
	if f.LockedBy != "" {
		conds = append(conds, "j.locked_by = "+a.add(f.LockedBy, "text"))
	}
	if len(f.Flags) > 0 {
		conds = append(conds, "j.flags ?& "+a.add(f.Flags, "text[]"))
	}
	if len(f.PayloadContains) > 0 {
		conds = append(conds, "j.payload::jsonb @> "+a.add(f.PayloadContains, "jsonb"))
	}
	if f.ErrorContains != "" {
		conds = append(conds, "strpos(lower(j.last_error), lower("+a.add(f.ErrorContains, "text")+")) > 0")
	}
	if len(conds) == 0 {
		return "true"
	}
	s := conds[0]
	for _, c := range conds[1:] {
		s += " and " + c
	}
	return s
}

func uniq[T comparable](s []T) []T {
	var out []T
	for _, v := range s {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// Page sizes of ListJobs.
const (
	// DefaultPageSize is the page size of ListJobs when Limit is 0.
	DefaultPageSize = 50
	// MaxPageSize is the largest Limit ListJobs accepts.
	MaxPageSize = 1000
)

// ListJobsOptions configures ListJobs.
type ListJobsOptions struct {
	// Filter selects the jobs.
	Filter JobFilter
	// Limit is the page size: 0 means DefaultPageSize; above MaxPageSize
	// is an error.
	Limit int
	// After is a cursor from JobPage.Next: the page after it, in the
	// listing order.
	After string
	// Before is a cursor from JobPage.Prev: the page before it. At most
	// one of After and Before may be set.
	Before string
	// OldestFirst lists by ascending id; the default is newest first
	// (descending id).
	OldestFirst bool
}

// JobPage is one page of ListJobs.
type JobPage struct {
	// Jobs are in the listing order, with TaskIdentifier and QueueName
	// filled in.
	Jobs []*Job
	// Next is the cursor of the following page (ListJobsOptions.After);
	// "" when there is none.
	Next string
	// Prev is the cursor of the preceding page (ListJobsOptions.Before);
	// "" on the first page. It may lead to an empty page when the jobs
	// before were removed meanwhile.
	Prev string
}

// GetJob returns the job with the given id, or an error wrapping
// ErrJobNotFound when there is none.
func (u *Utils) GetJob(ctx context.Context, id int64) (*Job, error) {
	jobs, err := u.jobsQuery(ctx, fmt.Sprintf("get job %d", id),
		newRenderer(u.schema).render("select "+jobColumns+" from {{schema}}._private_jobs j where j.id = $1::bigint"), id)
	if err != nil {
		return nil, err
	}
	if len(jobs) == 0 {
		return nil, fmt.Errorf("gworker: get job %d: %w", id, ErrJobNotFound)
	}
	return jobs[0], nil
}

// ListJobs returns one page of the jobs opts.Filter matches, newest first
// unless opts.OldestFirst, with cursors for the pages before and after.
//
// Pagination is by keyset on the job id, so it is stable while jobs are
// added and removed: paging through never shows a job twice nor skips one
// that existed throughout. Jobs added after the first page have higher ids
// and show up on a new first page (newest first) or at the end (oldest
// first). A page is one statement that walks the primary key from the
// cursor and stops when the page is full; see JobFilter for which filters
// stay cheap on big tables.
func (u *Utils) ListJobs(ctx context.Context, opts ListJobsOptions) (JobPage, error) {
	if err := opts.Filter.Validate(); err != nil {
		return JobPage{}, err
	}
	limit := opts.Limit
	switch {
	case limit == 0:
		limit = DefaultPageSize
	case limit < 0 || limit > MaxPageSize:
		return JobPage{}, &ValidationError{Field: "ListJobsOptions.Limit", Value: opts.Limit, Reason: fmt.Sprintf("must be between 1 and %d (0 means %d)", MaxPageSize, DefaultPageSize)}
	}
	if opts.After != "" && opts.Before != "" {
		return JobPage{}, &ValidationError{Field: "ListJobsOptions.Before", Reason: "cannot be combined with After"}
	}
	forward := opts.Before == ""
	var cursor int64
	var hasCursor bool
	for _, c := range []struct{ field, v string }{{"After", opts.After}, {"Before", opts.Before}} {
		if c.v == "" {
			continue
		}
		id, err := parseCursor(c.v)
		if err != nil {
			return JobPage{}, &ValidationError{Field: "ListJobsOptions." + c.field, Value: c.v, Reason: "is not a cursor from a JobPage"}
		}
		cursor, hasCursor = id, true
	}
	desc := !opts.OldestFirst
	scanDesc := desc == forward // the direction the statement walks the ids
	r := newRenderer(u.schema)
	var a sqlArgs
	sql := "select " + jobColumns + " from " + r.quoted + "._private_jobs j where " + opts.Filter.where(r, &a)
	if hasCursor {
		op := " > "
		if scanDesc {
			op = " < "
		}
		sql += " and j.id" + op + a.add(cursor, "bigint")
	}
	if scanDesc {
		sql += " order by j.id desc"
	} else {
		sql += " order by j.id"
	}
	// The limit is written as a literal (a validated int): a cached
	// generic plan would otherwise assume a tenth of the table.
	sql += " limit " + strconv.Itoa(limit+1)
	jobs, err := u.jobsQuery(ctx, "list jobs", sql, a...)
	if err != nil {
		return JobPage{}, err
	}
	more := len(jobs) > limit
	if more {
		jobs = jobs[:limit]
	}
	if !forward {
		slices.Reverse(jobs)
	}
	page := JobPage{Jobs: jobs}
	if len(jobs) == 0 {
		// An empty page past a cursor: the way back is the page that ends
		// with the cursor's job (earlier is toward higher ids when newest
		// first).
		if hasCursor {
			back := cursor - 1
			if !desc {
				back = cursor + 1
			}
			if forward {
				page.Prev = formatCursor(back)
			} else {
				page.Next = formatCursor(2*cursor - back)
			}
		}
		return page, nil
	}
	first, last := formatCursor(jobs[0].ID), formatCursor(jobs[len(jobs)-1].ID)
	if forward {
		if more {
			page.Next = last
		}
		if hasCursor {
			page.Prev = first
		}
	} else {
		if more {
			page.Prev = first
		}
		page.Next = last
	}
	return page, nil
}

// Cursors are the id of the job at a page's edge, in decimal. Callers treat
// them as opaque.
func formatCursor(id int64) string { return strconv.FormatInt(id, 10) }

func parseCursor(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }

// CountJobs returns how many jobs f matches, with one count over the table
// (an index on the id or the key when f names them).
func (u *Utils) CountJobs(ctx context.Context, f JobFilter) (int64, error) {
	if err := f.Validate(); err != nil {
		return 0, err
	}
	r := newRenderer(u.schema)
	var a sqlArgs
	var n int64
	if _, err := queryOne(ctx, u.ex, "select count(*) from "+r.quoted+"._private_jobs j where "+f.where(r, &a), a, &n); err != nil {
		return 0, fmt.Errorf("gworker: count jobs: %w", err)
	}
	return n, nil
}

// DefaultExactStatsBelow is the table size (in rows, as estimated by the
// planner's statistics) below which JobStats counts exactly.
const DefaultExactStatsBelow = 100_000

// statsSamplePages is how many table pages an estimating JobStats samples.
const statsSamplePages = 1000

// JobStatsOptions configures JobStats.
type JobStatsOptions struct {
	// ExactBelow: count exactly when the jobs table holds fewer rows than
	// this (by the planner's estimate); 0 means DefaultExactStatsBelow.
	ExactBelow int64
}

// StateCounts counts jobs per state.
type StateCounts map[JobState]int64

// JobStats are job counts by state, task and queue.
type JobStats struct {
	// Exact is false when the counts are estimates (scaled from a sample):
	// UIs should say so, e.g. "~1.2M".
	Exact bool
	// Total is the number of jobs.
	Total int64
	// ByState has every state, zeros included.
	ByState StateCounts
	// ByTask has the task identifiers with jobs, and only their non-zero
	// states.
	ByTask map[string]StateCounts
	// ByQueue has the named queues with jobs (jobs without a queue are
	// not in it), and only their non-zero states.
	ByQueue map[string]StateCounts
}

// JobStats counts the jobs per state, per task and per queue.
//
// Below opts.ExactBelow rows it reads the whole table once. Above, it
// stays cheap on big tables: Total comes from the planner's statistics
// (pg_class.reltuples, scaled to the table's current size) and the
// breakdowns from a TABLESAMPLE SYSTEM sample of about 1000 pages, scaled
// to Total; Exact is then false. Rows cluster by age in the table, so small
// groups may be missed or over-counted by an estimate.
func (u *Utils) JobStats(ctx context.Context, opts JobStatsOptions) (JobStats, error) {
	exactBelow := opts.ExactBelow
	switch {
	case exactBelow == 0:
		exactBelow = DefaultExactStatsBelow
	case exactBelow < 0:
		return JobStats{}, &ValidationError{Field: "JobStatsOptions.ExactBelow", Value: exactBelow, Reason: "must not be negative"}
	}
	r := newRenderer(u.schema)
	var (
		reltuples       float64
		relpages, pages int64
	)
	if _, err := queryOne(ctx, u.ex, `select c.reltuples::float8, c.relpages::bigint,
  (pg_relation_size(c.oid) / current_setting('block_size')::bigint)::bigint
from pg_class c where c.oid = $1::text::regclass`, []any{r.quoted + "._private_jobs"}, &reltuples, &relpages, &pages); err != nil {
		return JobStats{}, fmt.Errorf("gworker: job stats: %w", err)
	}
	// The planner's way: rows per page at the last ANALYZE times the
	// pages now. -1 means never analyzed.
	estimate := int64(-1)
	if reltuples >= 0 && relpages > 0 {
		estimate = int64(math.Round(reltuples / float64(relpages) * float64(pages)))
	} else if reltuples >= 0 {
		estimate = int64(reltuples)
	}
	if pages == 0 || (estimate >= 0 && estimate < exactBelow) {
		return u.countStats(ctx, r, "", nil, 0)
	}
	pct := 100.0
	if pages > statsSamplePages {
		pct = 100 * float64(statsSamplePages) / float64(pages)
	}
	st, err := u.countStats(ctx, r, " tablesample system ($1::float8)", []any{pct}, estimate)
	if err != nil {
		return JobStats{}, err
	}
	if estimate < 0 && st.Total < exactBelow {
		// Never analyzed and small after all.
		return u.countStats(ctx, r, "", nil, 0)
	}
	return st, nil
}

// countStats counts the table, or with sample set a sample of pct percent
// of its pages, scaled to total (or, when total is negative, to the
// sample's own estimate of the table).
func (u *Utils) countStats(ctx context.Context, r renderer, sample string, args []any, total int64) (JobStats, error) {
	rows, err := u.ex.Query(ctx, r.render(`select coalesce(t.identifier, '#' || s.task_id::text), q.queue_name, s.state, s.n
from (
  select j.task_id, j.job_queue_id, `+stateCase+` as state, count(*) as n
  from {{schema}}._private_jobs j`+sample+`
  group by 1, 2, 3
) s
left join {{schema}}._private_tasks t on t.id = s.task_id
left join {{schema}}._private_job_queues q on q.id = s.job_queue_id`), args...)
	if err != nil {
		return JobStats{}, fmt.Errorf("gworker: job stats: %w", err)
	}
	defer rows.Close()
	type group struct {
		task  string
		queue *string
		state JobState
		n     int64
	}
	var (
		groups []group
		seen   int64
	)
	for rows.Next() {
		var (
			g     group
			state string
		)
		if err := rows.Scan(&g.task, &g.queue, &state, &g.n); err != nil {
			return JobStats{}, fmt.Errorf("gworker: job stats: %w", err)
		}
		g.state = JobState(state)
		seen += g.n
		groups = append(groups, g)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return JobStats{}, fmt.Errorf("gworker: job stats: %w", err)
	}
	st := JobStats{Exact: sample == "", Total: seen, ByState: StateCounts{}, ByTask: map[string]StateCounts{}, ByQueue: map[string]StateCounts{}}
	scale := 1.0
	if sample != "" {
		if total < 0 {
			total = int64(math.Round(float64(seen) * 100 / args[0].(float64)))
		}
		st.Total = total
		if seen > 0 {
			scale = float64(total) / float64(seen)
		}
	}
	for _, s := range JobStates {
		st.ByState[s] = 0
	}
	add := func(m map[string]StateCounts, k string, s JobState, n int64) {
		if m[k] == nil {
			m[k] = StateCounts{}
		}
		m[k][s] += n
	}
	for _, g := range groups {
		n := int64(math.Round(float64(g.n) * scale))
		st.ByState[g.state] += n
		add(st.ByTask, g.task, g.state, n)
		if g.queue != nil {
			add(st.ByQueue, *g.queue, g.state, n)
		}
	}
	return st, nil
}

// QueueInfo is a named queue.
type QueueInfo struct {
	// Name is the queue name.
	Name string
	// Waiting counts the queue's jobs that are neither locked nor
	// permanently failed (ready, scheduled or retrying).
	Waiting int64
	// LockedBy is the worker running the queue's current job; "" when the
	// queue is unlocked.
	LockedBy string
	// LockedAt is when the queue was locked; nil when unlocked.
	LockedAt *time.Time
}

// ListQueues returns the named queues by name, including queues without
// jobs (graphile-worker keeps them until Cleanup's GCJobQueues). It counts
// over the index workers fetch from (jobs_main_index, which covers every
// waiting job), so it grows with the backlog.
func (u *Utils) ListQueues(ctx context.Context) ([]QueueInfo, error) {
	rows, err := u.ex.Query(ctx, newRenderer(u.schema).render(`select q.queue_name, coalesce(w.n, 0), q.locked_by, q.locked_at
from {{schema}}._private_job_queues q
left join (
  select j.job_queue_id, count(*) as n from {{schema}}._private_jobs j
  where j.is_available = true and j.job_queue_id is not null group by 1
) w on w.job_queue_id = q.id
order by q.queue_name`))
	if err != nil {
		return nil, fmt.Errorf("gworker: list queues: %w", err)
	}
	defer rows.Close()
	var out []QueueInfo
	for rows.Next() {
		var (
			q        QueueInfo
			lockedBy *string
		)
		if err := rows.Scan(&q.Name, &q.Waiting, &lockedBy, &q.LockedAt); err != nil {
			return nil, fmt.Errorf("gworker: list queues: %w", err)
		}
		if lockedBy != nil {
			q.LockedBy = *lockedBy
		}
		out = append(out, q)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("gworker: list queues: %w", err)
	}
	return out, nil
}

// LockHolder is a worker that holds locks on jobs or named queues, named by
// the locked_by it wrote: a gworker worker's pool id or a graphile-worker
// (Node) pool's.
type LockHolder struct {
	// ID is the holder's locked_by.
	ID string
	// LockedJobs counts the jobs it holds.
	LockedJobs int64
	// LockedQueues counts the named queues it holds.
	LockedQueues int64
	// OldestLock is the earliest locked_at of those jobs and queues; zero
	// only if none of them has one (graphile-worker always writes both).
	OldestLock time.Time
	// Registered says the holder has a row in gworker's worker registry
	// (live or stale, as ListActiveWorkers shows it). graphile-worker
	// workers and gworker workers with recovery off do not register, and
	// no holder is registered when the schema has no registry.
	Registered bool
}

// ListLockHolders returns every worker holding jobs or named queues, the
// oldest lock first (then by ID), with exact counts: one grouped count
// over the jobs and one over the queues, whatever their number. Holders
// need not be registered, so the locks of graphile-worker (Node) workers
// show here while ListActiveWorkers leaves them out. No index covers
// locked_by, so the count reads the whole jobs table.
func (u *Utils) ListLockHolders(ctx context.Context) ([]LockHolder, error) {
	r := newRenderer(u.schema)
	var registryExists bool
	if _, err := queryOne(ctx, u.ex, "select to_regclass($1::text) is not null",
		[]any{r.quoted + "._private_gworker_workers"}, &registryExists); err != nil {
		return nil, fmt.Errorf("gworker: list lock holders: %w", err)
	}
	registered := "false"
	if registryExists {
		registered = "exists (select 1 from {{schema}}._private_gworker_workers w where w.worker_id = l.locked_by)"
	}
	rows, err := u.ex.Query(ctx, r.render(`select l.locked_by, sum(l.jobs)::bigint, sum(l.queues)::bigint, min(l.oldest), `+registered+`
from (
  select j.locked_by, count(*) as jobs, 0::bigint as queues, min(j.locked_at) as oldest
  from {{schema}}._private_jobs j where j.locked_by is not null group by j.locked_by
  union all
  select q.locked_by, 0::bigint, count(*), min(q.locked_at)
  from {{schema}}._private_job_queues q where q.locked_by is not null group by q.locked_by
) l
group by l.locked_by
order by min(l.oldest) nulls last, l.locked_by`))
	if err != nil {
		return nil, fmt.Errorf("gworker: list lock holders: %w", err)
	}
	defer rows.Close()
	var out []LockHolder
	for rows.Next() {
		var (
			h      LockHolder
			oldest *time.Time
		)
		if err := rows.Scan(&h.ID, &h.LockedJobs, &h.LockedQueues, &oldest, &h.Registered); err != nil {
			return nil, fmt.Errorf("gworker: list lock holders: %w", err)
		}
		if oldest != nil {
			h.OldestLock = *oldest
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("gworker: list lock holders: %w", err)
	}
	return out, nil
}

// TaskInfo is a task identifier known to the schema.
type TaskInfo struct {
	// Identifier is the task identifier.
	Identifier string
	// Waiting counts the task's jobs that are neither locked nor
	// permanently failed (ready, scheduled or retrying).
	Waiting int64
	// Ready counts those of them that may run now (run_at has passed).
	Ready int64
	// Workers are the live gworker workers (heartbeat younger than
	// DefaultStaleThreshold) that registered this task, sorted. Empty
	// means no gworker worker runs it: its jobs wait, unless a
	// graphile-worker (Node) worker, which does not register, runs it.
	Workers []string
}

// ListTasks returns the task identifiers by name, with their waiting jobs
// and the live gworker workers that run them, so jobs nobody runs (a task
// name with a typo, a worker not deployed) are visible. Identifiers stay
// until Cleanup's GCTaskIdentifiers, so old ones without jobs show too.
// Workers is empty for every task when the schema lacks gworker's worker
// registry (graphile-worker installed it and gworker never migrated it).
func (u *Utils) ListTasks(ctx context.Context) ([]TaskInfo, error) {
	r := newRenderer(u.schema)
	registry, err := u.hasTaskRegistry(ctx)
	if err != nil {
		return nil, fmt.Errorf("gworker: list tasks: %w", err)
	}
	workers := "'{}'::text[]"
	var args []any
	if registry {
		workers = `array(select w.worker_id from {{schema}}._private_gworker_workers w
    where w.tasks @> array[t.identifier] and ` + liveWorker + `
    order by w.worker_id)`
		args = append(args, DefaultStaleThreshold.Seconds())
	}
	rows, err := u.ex.Query(ctx, r.render(`select t.identifier, coalesce(c.waiting, 0), coalesce(c.ready, 0), `+workers+`
from {{schema}}._private_tasks t
left join (
  select j.task_id, count(*) as waiting, count(*) filter (where j.run_at <= now()) as ready
  from {{schema}}._private_jobs j where j.is_available = true group by 1
) c on c.task_id = t.id
order by t.identifier`), args...)
	if err != nil {
		return nil, fmt.Errorf("gworker: list tasks: %w", err)
	}
	defer rows.Close()
	var out []TaskInfo
	for rows.Next() {
		var ti TaskInfo
		if err := rows.Scan(&ti.Identifier, &ti.Waiting, &ti.Ready, &ti.Workers); err != nil {
			return nil, fmt.Errorf("gworker: list tasks: %w", err)
		}
		if len(ti.Workers) == 0 {
			ti.Workers = nil
		}
		out = append(out, ti)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("gworker: list tasks: %w", err)
	}
	return out, nil
}

// liveWorker is the condition on a row w of the worker registry that its
// worker lives: its heartbeat is younger than $1 seconds (or twice its own
// interval, if longer): the opposite of staleBefore, by which the sweep
// judges a worker dead.
const liveWorker = "w.last_heartbeat_at >= " + staleBefore

// hasTaskRegistry reports whether the schema's worker registry records the
// tasks of each worker: not when graphile-worker installed the schema and
// gworker never migrated it, nor when an older gworker did.
func (u *Utils) hasTaskRegistry(ctx context.Context) (bool, error) {
	var registry bool
	_, err := queryOne(ctx, u.ex, `select exists (select 1 from pg_attribute
  where attrelid = to_regclass($1::text) and attname = 'tasks' and not attisdropped)`,
		[]any{newRenderer(u.schema).quoted + "._private_gworker_workers"}, &registry)
	return registry, err
}

// liveWorkerTasks returns the identifiers of the tasks that live gworker
// workers registered; none when the schema has no such registry.
func (u *Utils) liveWorkerTasks(ctx context.Context) ([]string, error) {
	registry, err := u.hasTaskRegistry(ctx)
	if err != nil || !registry {
		return nil, err
	}
	rows, err := u.ex.Query(ctx, newRenderer(u.schema).render(`select distinct unnest(w.tasks)
from {{schema}}._private_gworker_workers w where `+liveWorker), DefaultStaleThreshold.Seconds())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// CrontabInfo is a cron item graphile-worker or gworker has registered in
// known_crontabs.
type CrontabInfo struct {
	// Identifier is the cron item's identifier (by default its task).
	Identifier string
	// KnownSince is when a cron runner first saw the item.
	KnownSince time.Time
	// LastExecution is the time of the last run scheduled (the timer's
	// time, not when the job ran); nil before the first.
	LastExecution *time.Time
}

// ListKnownCrontabs returns the known cron items by identifier.
func (u *Utils) ListKnownCrontabs(ctx context.Context) ([]CrontabInfo, error) {
	rows, err := u.ex.Query(ctx, newRenderer(u.schema).render(
		"select identifier, known_since, last_execution from {{schema}}._private_known_crontabs order by identifier"))
	if err != nil {
		return nil, fmt.Errorf("gworker: list known crontabs: %w", err)
	}
	defer rows.Close()
	var out []CrontabInfo
	for rows.Next() {
		var c CrontabInfo
		if err := rows.Scan(&c.Identifier, &c.KnownSince, &c.LastExecution); err != nil {
			return nil, fmt.Errorf("gworker: list known crontabs: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("gworker: list known crontabs: %w", err)
	}
	return out, nil
}
