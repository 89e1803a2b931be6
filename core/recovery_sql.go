package core

// recoverySQL holds the statements of dead-worker recovery, rendered for one
// schema. They touch graphile-worker's tables only the way its own worker
// does (locks, attempts, run_at, last_error); the registry is gworker's own
// _private_gworker_workers (sql/gworker_000001.sql).
type recoverySQL struct {
	register, heartbeat, deregister string
	listWorkers                     string
	tryLock, lock                   string
	findDead, sweep                 string
}

// A worker is stale when its last heartbeat is older than the threshold, or
// than twice its own heartbeat interval if that is longer: a sweeper given a
// short threshold cannot declare a live worker with a long interval dead.
const staleBefore = "now() - greatest($1::float8 * interval '1 second', 2 * w.heartbeat_interval)"

func newRecoverySQL(r renderer) *recoverySQL {
	return &recoverySQL{
		register: r.render(`insert into {{schema}}._private_gworker_workers as w
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

		sweep: r.render(sweepSQL),
	}
}

// sweepSQL frees the locks of dead workers in one statement.
//
//	$1 text[]  dead registered workers
//	$2 text[]  those of them whose resilient window has passed too
//	$3 float8  recovery delay in seconds (action return)
//	$4 bool    also free foreign locks (lockers not in the registry)
//	$5 float8  threshold in seconds, for foreign locks (judged by locked_at)
//	$6 float8  resilient multiplier
//	$7 text    the resilient flag
//	$8 text    the action: return, fail_with_backoff or skip
//
// held is every job the dead workers hold plus, with $4, every job an
// unregistered locker has held longer than the threshold; take says whether
// this sweep frees it (a resilient job of a worker dead for less than the
// longer window stays locked, and so does its queue, and the worker's row
// stays until it is freed). It returns one row (kind, id, worker) per freed
// job (job, its id, the locker), per unlocked queue (queue, its id, empty)
// and per removed worker row (worker, 0, its id).
const sweepSQL = `with held as (
  select j.id, j.job_queue_id, j.locked_by, j.locked_at, w.last_heartbeat_at,
         case
           when $8::text = 'skip' then false
           when w.worker_id is null then true
           else j.locked_by = any($2::text[]) or (j.flags ? $7::text) is not true
         end as take
  from {{schema}}._private_jobs j
  left join {{schema}}._private_gworker_workers w on w.worker_id = j.locked_by
  where j.locked_by = any($1::text[])
     or ($4::boolean and j.locked_by is not null and w.worker_id is null
         and j.locked_at < now() - $5::float8 * interval '1 second'
                                 * case when (j.flags ? $7::text) is true then $6::float8 else 1 end)
), freed as (
  update {{schema}}._private_jobs as j
  set attempts = case when $8::text = 'fail_with_backoff' then j.attempts else greatest(0, j.attempts - 1) end,
      run_at = case when $8::text = 'fail_with_backoff'
                 then greatest(now(), j.run_at) + exp(least(j.attempts, 10)) * interval '1 second'
                 else greatest(j.run_at, now() + $3::float8 * interval '1 second') end,
      last_error = case when h.last_heartbeat_at is not null
          then format('gworker: worker %s died (no heartbeat since %s); %s', h.locked_by,
                      to_char(h.last_heartbeat_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                      case when $8::text = 'fail_with_backoff' then 'the attempt counts as failed'
                           else 'job returned to the queue, the attempt does not count' end)
          else format('gworker: lock of unregistered worker %s (since %s) expired; %s', h.locked_by,
                      to_char(h.locked_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                      case when $8::text = 'fail_with_backoff' then 'the attempt counts as failed'
                           else 'job returned to the queue, the attempt does not count' end)
        end,
      locked_by = null,
      locked_at = null,
      updated_at = now()
  from held h
  where h.take and j.id = h.id and j.locked_by = h.locked_by
  returning j.id, j.job_queue_id, h.locked_by
), unlocked as (
  update {{schema}}._private_job_queues as q
  set locked_by = null, locked_at = null
  where $8::text <> 'skip'
    and (q.locked_by = any($1::text[])
         or exists (select 1 from freed f where f.job_queue_id = q.id and f.locked_by = q.locked_by))
    and not exists (select 1 from held h where not h.take and h.job_queue_id = q.id and h.locked_by = q.locked_by)
  returning q.id
), gone as (
  delete from {{schema}}._private_gworker_workers as w
  where w.worker_id = any($1::text[])
    and not exists (select 1 from held h where not h.take and h.locked_by = w.worker_id)
    and ($8::text <> 'skip' or not exists (select 1 from {{schema}}._private_job_queues q where q.locked_by = w.worker_id))
  returning w.worker_id
)
select 'job', f.id, f.locked_by from freed f
union all select 'queue', u.id::bigint, '' from unlocked u
union all select 'worker', 0::bigint, g.worker_id from gone g`
