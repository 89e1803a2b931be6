package core

import (
	"strconv"
	"strings"
)

// recoverySQL holds the statements of dead-worker recovery, rendered for one
// schema. They touch graphile-worker's tables only the way its own worker
// does (locks, attempts, run_at, last_error); the registry is gworker's own
// _private_gworker_workers (sql/gworker_000001.sql).
type recoverySQL struct {
	register, heartbeat, deregister string
	registerNoTasks                 string
	listWorkers                     string
	tryLock, lock                   string
	findDead, sweep                 string
	heldJobs                        string
	writeThroughput                 string
}

// A worker is stale when its last heartbeat is older than the threshold, or
// than twice its own heartbeat interval if that is longer: a sweeper given a
// short threshold cannot declare a live worker with a long interval dead.
const staleBefore = "now() - greatest($1::float8 * interval '1 second', 2 * w.heartbeat_interval)"

func newRecoverySQL(r renderer) *recoverySQL {
	return &recoverySQL{
		// $8 the worker's task identifiers (gworker migration 2).
		register: r.render(`insert into {{schema}}._private_gworker_workers as w
  (worker_id, hostname, pid, version, concurrency, run_once, heartbeat_interval, tasks)
values ($1, $2, $3::int, $4, $5::int, $6, $7::float8 * interval '1 second', $8::text[])
on conflict (worker_id) do update set last_heartbeat_at = now(), tasks = excluded.tasks`),

		// register for a registry without the tasks column (a schema
		// migrated by an older gworker, run with SkipMigrate).
		registerNoTasks: r.render(`insert into {{schema}}._private_gworker_workers as w
  (worker_id, hostname, pid, version, concurrency, run_once, heartbeat_interval)
values ($1, $2, $3::int, $4, $5::int, $6, $7::float8 * interval '1 second')
on conflict (worker_id) do update set last_heartbeat_at = now()`),

		heartbeat: r.render("update {{schema}}._private_gworker_workers set last_heartbeat_at = now() where worker_id = $1"),

		// A worker that still holds locks (its outcomes could not be
		// recorded) keeps its row: it goes stale and a sweeper frees them.
		deregister: r.render(`delete from {{schema}}._private_gworker_workers w
where w.worker_id = $1
  and not exists (select 1 from {{schema}}._private_jobs j where j.locked_by = $1)
  and not exists (select 1 from {{schema}}._private_job_queues q where q.locked_by = $1)`),

		// $1 threshold in seconds.
		listWorkers: r.render(`select w.worker_id, w.hostname, w.pid, w.version, w.concurrency, w.run_once,
  extract(epoch from w.heartbeat_interval)::float8, w.started_at, w.last_heartbeat_at,
  extract(epoch from now() - w.last_heartbeat_at)::float8,
  w.last_heartbeat_at < ` + staleBefore + `,
  coalesce(l.n, 0)
from {{schema}}._private_gworker_workers w
left join (
  select j.locked_by, count(*) as n from {{schema}}._private_jobs j
  where j.locked_by in (select worker_id from {{schema}}._private_gworker_workers)
  group by j.locked_by
) l on l.locked_by = w.worker_id
order by w.started_at, w.worker_id`),

		// One sweeper at a time per schema, across the cluster; the key is
		// derived from the schema name ($1) so schemas do not block each
		// other. Transaction-scoped: it goes with the sweep's commit.
		tryLock: "select pg_try_advisory_xact_lock(hashtextextended('gworker:sweep:' || $1::text, 0))",
		lock:    "select true from (select pg_advisory_xact_lock(hashtextextended('gworker:sweep:' || $1::text, 0))) l",

		// $1 threshold in seconds, $2 resilient multiplier, $3 the caller's
		// own worker id (never judged dead by itself) or null. The second
		// column says whether the resilient window has passed too. The rows
		// stay locked until the sweep commits, so a worker that comes back
		// meanwhile waits with its heartbeat and then finds its row gone.
		findDead: r.render(`select w.worker_id,
  w.last_heartbeat_at < now() - $2::float8 * greatest($1::float8 * interval '1 second', 2 * w.heartbeat_interval)
from {{schema}}._private_gworker_workers w
where w.last_heartbeat_at < ` + staleBefore + `
  and w.worker_id is distinct from $3::text
order by w.worker_id
for update of w`),

		sweep: r.render(withHeldParams(sweepSQL, sweepParams)),

		heldJobs: r.render(withHeldParams(heldJobsSQL, heldJobsParams)),

		writeThroughput: r.render(writeThroughputSQL),
	}
}

// heldWhere picks the jobs a sweep may free: every job the dead workers
// hold and, with foreign sweeping on, every job an unregistered locker has
// held longer than the threshold (× the multiplier for resilient jobs).
// eligible says whether this sweep may free such a job: a resilient job of
// a worker dead for less than the longer window stays locked (and so does
// its queue, and the worker's row stays). Both read the jobs table as j and
// the registry, left joined on locked_by, as w.
const (
	heldWhere = `(j.locked_by = any({{dead}})
     or ({{foreign}} and j.locked_by is not null and w.worker_id is null
         and j.locked_at < now() - {{threshold}} * interval '1 second'
                                 * case when (j.flags ? {{flag}}) is true then {{multiplier}} else 1 end))`
	eligible = `(w.worker_id is null or j.locked_by = any({{expired}}) or (j.flags ? {{flag}}) is not true)`
)

// heldArgs numbers the parameters of heldWhere and eligible in a statement.
type heldArgs struct{ dead, expired, foreign, threshold, multiplier, flag int }

var (
	sweepParams    = heldArgs{dead: 1, expired: 2, foreign: 4, threshold: 5, multiplier: 6, flag: 7}
	heldJobsParams = heldArgs{dead: 1, expired: 2, foreign: 3, threshold: 4, multiplier: 5, flag: 6}
)

// withHeldParams writes heldWhere and eligible, with a's parameter numbers,
// into sql's {{held}} and {{eligible}}.
func withHeldParams(sql string, a heldArgs) string {
	p := func(n int, typ string) string { return "$" + strconv.Itoa(n) + "::" + typ }
	params := strings.NewReplacer("{{dead}}", p(a.dead, "text[]"), "{{expired}}", p(a.expired, "text[]"),
		"{{foreign}}", p(a.foreign, "boolean"), "{{threshold}}", p(a.threshold, "float8"),
		"{{multiplier}}", p(a.multiplier, "float8"), "{{flag}}", p(a.flag, "text"))
	return strings.NewReplacer("{{held}}", params.Replace(heldWhere), "{{eligible}}", params.Replace(eligible)).Replace(sql)
}

// heldJobsSQL reads, and locks until the sweep commits, the jobs a sweep
// would free, for BeforeRecover hooks: the job's columns, its task
// identifier and queue name, and the locker's last heartbeat (null for an
// unregistered locker). Parameters: heldJobsParams.
const heldJobsSQL = `select ` + jobColumns + `, t.identifier, q.queue_name, w.last_heartbeat_at
from {{schema}}._private_jobs j
join {{schema}}._private_tasks t on t.id = j.task_id
left join {{schema}}._private_job_queues q on q.id = j.job_queue_id
left join {{schema}}._private_gworker_workers w on w.worker_id = j.locked_by
where {{held}} and {{eligible}}
order by j.id
for update of j`

// sweepSQL frees the locks of dead workers in one statement.
//
//	$1  text[]   dead registered workers
//	$2  text[]   those of them whose resilient window has passed too
//	$3  float8   recovery delay in seconds (action return)
//	$4  bool     also free foreign locks (lockers not in the registry)
//	$5  float8   threshold in seconds, for foreign locks (judged by locked_at)
//	$6  float8   resilient multiplier
//	$7  text     the resilient flag
//	$8  text     the sweep's action: return, fail_with_backoff or skip
//	$9  bigint[] jobs a BeforeRecover hook decided on,
//	$10 text[]   their actions (the above, or reschedule),
//	$11 text[]   and the time a rescheduled one runs at ('' for now)
//	$12 bool     free only the jobs in $9 (hooks were asked; a job they
//	             were not asked about waits for the next sweep)
//
// held is every job the sweep may free (heldWhere), with its action and
// whether this sweep frees it (take). A job not taken keeps its named queue
// locked and its worker's row. It returns one row (kind, id, worker,
// runnable) per freed job (job, its id, the locker, whether it may run at
// once), per unlocked queue (queue, its id) and per removed worker row
// (worker, 0, its id).
const sweepSQL = `with decided as (
  select d.id, d.action, nullif(d.run_at, '')::timestamptz as run_at
  from unnest($9::bigint[], $10::text[], $11::text[]) as d(id, action, run_at)
), held as (
  select j.id, j.job_queue_id, j.locked_by, j.locked_at, w.last_heartbeat_at,
         coalesce(d.action, $8::text) as action, d.run_at as rescheduled_at,
         {{eligible}} and coalesce(d.action, $8::text) <> 'skip' and (d.id is not null or not $12::boolean) as take
  from {{schema}}._private_jobs j
  left join {{schema}}._private_gworker_workers w on w.worker_id = j.locked_by
  left join decided d on d.id = j.id
  where {{held}}
), freed as (
  update {{schema}}._private_jobs as j
  set attempts = case when h.action = 'fail_with_backoff' then j.attempts else greatest(0, j.attempts - 1) end,
      run_at = case h.action
                 when 'fail_with_backoff' then greatest(now(), j.run_at) + exp(least(j.attempts, 10)) * interval '1 second'
                 when 'reschedule' then coalesce(h.rescheduled_at, now())
                 else greatest(j.run_at, now() + $3::float8 * interval '1 second') end,
      last_error = format('gworker: %s; %s',
          case when h.last_heartbeat_at is not null
            then format('worker %s died (no heartbeat since %s)', h.locked_by,
                        to_char(h.last_heartbeat_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
            else format('lock of unregistered worker %s (since %s) expired', h.locked_by,
                        to_char(h.locked_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
          end,
          case h.action
            when 'fail_with_backoff' then 'the attempt counts as failed'
            when 'reschedule' then 'job rescheduled by a recovery hook, the attempt does not count'
            else 'job returned to the queue, the attempt does not count'
          end),
      locked_by = null,
      locked_at = null,
      updated_at = now()
  from held h
  where h.take and j.id = h.id and j.locked_by = h.locked_by
  returning j.id, j.job_queue_id, h.locked_by, j.run_at <= now() as runnable
), unlocked as (
  update {{schema}}._private_job_queues as q
  set locked_by = null, locked_at = null
  where (($8::text <> 'skip' and q.locked_by = any($1::text[]))
         or exists (select 1 from freed f where f.job_queue_id = q.id and f.locked_by = q.locked_by))
    and not exists (select 1 from held h where not h.take and h.job_queue_id = q.id and h.locked_by = q.locked_by)
  returning q.id
), gone as (
  delete from {{schema}}._private_gworker_workers as w
  where w.worker_id = any($1::text[])
    and not exists (select 1 from held h where not h.take and h.locked_by = w.worker_id)
    and not exists (select 1 from {{schema}}._private_job_queues q
                    where q.locked_by = w.worker_id and not exists (select 1 from unlocked u where u.id = q.id))
  returning w.worker_id
)
select 'job', f.id, f.locked_by, f.runnable from freed f
union all select 'queue', u.id::bigint, '', false from unlocked u
union all select 'worker', 0::bigint, g.worker_id, false from gone g`
