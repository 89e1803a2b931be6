package core

import (
	"strconv"
	"strings"
	"sync"
)

// workerSQL holds the worker's statements (graphile-worker's inline worker
// SQL, COMPAT.md §2), rendered for one schema.
type workerSQL struct {
	registerTasks, readTaskIDs string
	// fetch[flags][localTime][ride] locks up to {{limit}} runnable jobs
	// for worker $1, and with ride also records completions; see fetchSQL
	// and fetchText.
	fetch [2][2][2]string
	// fetchTexts caches fetch statements with their limit filled in.
	fetchMu       sync.Mutex
	fetchTexts    map[[4]int]string
	complete      string
	fail          string
	returnJobs    string
	lockedJobs    string
	missedCancels string
}

func newWorkerSQL(r renderer, durableFetch bool) *workerSQL {
	s := &workerSQL{
		// In order: two workers starting together would otherwise lock
		// the same new names in different orders, and deadlock.
		registerTasks: r.render("insert into {{schema}}._private_tasks (identifier)" +
			" select i from unnest($1::text[]) i" +
			" where not exists (select 1 from {{schema}}._private_tasks t where t.identifier = i)" +
			" order by i" +
			" on conflict do nothing"),
		readTaskIDs: r.render("select id, identifier from {{schema}}._private_tasks where identifier = any($1::text[])"),

		// Completed jobs are deleted, if this worker still holds them, or
		// if nobody does and they are unchanged since they were fetched
		// ($3: their revisions); see completer.completeJobs. Their queues
		// are unlocked if this worker holds them.
		complete: r.render(`with done as (
` + deleteCompleted("$1", "$2", "$3") + `
  returning j.job_queue_id
)
update {{schema}}._private_job_queues as q set locked_by = null, locked_at = null
from done where q.id = done.job_queue_id and q.locked_by = $2`),

		// $2 is a JSON array of {"id", "message", "payload"?, "permanent"?,
		// "snooze"?}; payload replaces the job's payload (partial batch
		// failure). The backoff is graphile-worker's: exp(min(attempts, 10))
		// seconds, on the database's clock. A permanent failure
		// (FailPermanently) takes the remaining attempts and keeps run_at,
		// as permanently_fail_jobs does; a snooze (RetryAfter, seconds)
		// gives the attempt back and runs the job after the delay, keeping
		// last_error when its message is empty. updated_at is left alone,
		// as graphile-worker's failure leaves it: a failed job looks the
		// same whichever side ran it.
		fail: r.render(`with f as (
  select (e->>'id')::bigint as id, e->>'message' as message, e->'payload' as payload,
         coalesce((e->>'permanent')::boolean, false) as permanent, (e->>'snooze')::float8 as snooze
  from json_array_elements($2::json) as e
), failed as (
  update {{schema}}._private_jobs as j
  set last_error = case when f.snooze is null then f.message else coalesce(nullif(f.message, ''), j.last_error) end,
      attempts = case when f.permanent then j.max_attempts
                      when f.snooze is not null then greatest(0, j.attempts - 1)
                      else j.attempts end,
      run_at = case when f.permanent then j.run_at
                    when f.snooze is not null then now() + f.snooze * interval '1 second'
                    else greatest(now(), j.run_at) + exp(least(j.attempts, 10)) * interval '1 second' end,
      locked_by = null,
      locked_at = null,
      payload = coalesce(f.payload, j.payload)
  from f
  where j.id = f.id and j.locked_by = $1
  returning j.job_queue_id
)
update {{schema}}._private_job_queues as q set locked_by = null, locked_at = null
from failed where q.id = failed.job_queue_id and q.locked_by = $1`),

		// Jobs handed back unfinished: the attempt is not counted. A null
		// delay ($3) keeps run_at, a null message ($4) keeps last_error.
		returnJobs: r.render(`with back as (
  update {{schema}}._private_jobs as j
  set attempts = greatest(0, j.attempts - 1),
      locked_by = null,
      locked_at = null,
      run_at = case when $3::float8 is null then j.run_at
                    else greatest(j.run_at, now() + $3::float8 * interval '1 second') end,
      last_error = coalesce($4, j.last_error),
      updated_at = now()
  where j.id = any($2::bigint[]) and j.locked_by = $1
  returning j.job_queue_id
)
update {{schema}}._private_job_queues as q set locked_by = null, locked_at = null
from back where q.id = back.job_queue_id and q.locked_by = $1`),

		// The jobs worker $1 holds, to find those a lost fetch locked. It
		// reads the table (no index on locked_by), so it runs only after a
		// failed fetch.
		lockedJobs: r.render("select j.id, j.job_queue_id from {{schema}}._private_jobs as j where j.locked_by = $1"),

		// The jobs worker $1 holds that CancelJob cancelled: out of
		// attempts, with its message (starting with $2), after they were
		// locked.
		missedCancels: r.render(`select j.id, j.last_error from {{schema}}._private_jobs as j
where j.locked_by = $1 and j.attempts >= j.max_attempts and j.updated_at >= j.locked_at
  and starts_with(j.last_error, $2::text)`),
	}
	for flags := 0; flags < 2; flags++ {
		for local := 0; local < 2; local++ {
			for ride := 0; ride < 2; ride++ {
				s.fetch[flags][local][ride] = r.render(fetchSQL(flags == 1, local == 1, ride == 1, durableFetch))
			}
		}
	}
	return s
}

// fetchSQL builds the statement that locks up to {{limit}} jobs for worker
// $1 among the tasks $2 (identifiers: their ids are read in the statement,
// so that a task row GC_TASK_IDENTIFIERS deleted and add_jobs created again
// is still found). The limit is part of the text, not a parameter:
// with a parameter PostgreSQL may settle on a generic plan that walks the
// primary key through every dead row of a busy table (measured 2-10x
// slower). The final update goes through the primary key by design too: a
// join lets the planner scan the whole table when it is small. It locks the available named queues first and skips rows
// other workers hold, then keeps at most one job per named queue so that a
// queue stays serial even when many jobs are fetched at once. $3 holds the
// forbidden flags and the next parameter the caller's clock, when those
// variants are used.
//
// With ride, the statement also records completions, as the complete
// statement does, from the next two parameters (ids and revisions), so
// that a busy worker records what finished and fetches what comes next in
// one round trip and one commit. Only jobs without a named queue ride: a
// queue freed in the statement could not be seen by its own fetch (one
// snapshot), so their completions go on their own to free the queue at
// once. A riding job that a sweep freed could also be a candidate; the
// statement then either deletes it or fetches it again, never loses it.
//
// Unless durable, or riding (a completion must be durable), the
// statement's own transaction commits with synchronous_commit off
// (WorkerOptions.DurableFetch).
func fetchSQL(withFlags, localTime, ride, durable bool) string {
	next := 3
	flags := ""
	if withFlags {
		flags = "\n    and ((candidate.flags ?| $3::text[]) is not true)"
		next++
	}
	now := "now()"
	if localTime {
		now = "$" + strconv.Itoa(next) + "::timestamptz"
		next++
	}
	with := "with "
	if ride {
		with = "with done as (\n" + deleteCompleted("$"+strconv.Itoa(next), "$1", "$"+strconv.Itoa(next+1)) + "\n), "
	}
	sql := with + `candidates as (
  select candidate.id, candidate.job_queue_id, candidate.priority, candidate.run_at
  from {{schema}}._private_jobs as candidate
  where candidate.is_available = true
    and candidate.run_at <= NOW
    and candidate.task_id = any(array(
      select t.id from {{schema}}._private_tasks as t where t.identifier = any($2::text[])))
    and (candidate.job_queue_id is null or candidate.job_queue_id in (
      select q.id from {{schema}}._private_job_queues as q
      where q.is_available = true
      for update skip locked
    ))FLAGS
  order by candidate.priority asc, candidate.run_at asc
  limit {{limit}}
  for update skip locked
), chosen as (
  select distinct on (c.job_queue_id, case when c.job_queue_id is null then c.id end) c.id, c.job_queue_id
  from candidates c
  order by c.job_queue_id, case when c.job_queue_id is null then c.id end, c.priority, c.run_at
), locked_queues as (
  update {{schema}}._private_job_queues as q
  set locked_by = $1, locked_at = now()
  from chosen
  where q.id = chosen.job_queue_id
)
update {{schema}}._private_jobs as j
set attempts = j.attempts + 1, locked_by = $1, locked_at = now()
where j.id = any(array(select chosen.id from chosen))ASYNC
returning ` + jobColumns
	// set_config(..., true) lasts until the end of the statement's own
	// transaction, so its commit alone skips waiting for the WAL flush.
	async := ""
	if !durable && !ride {
		async = "\n  and (select set_config('synchronous_commit', 'off', true)) is not null"
	}
	sql = strings.Replace(sql, "NOW", now, 1)
	sql = strings.Replace(sql, "ASYNC", async, 1)
	return strings.Replace(sql, "FLAGS", flags, 1)
}

// deleteCompleted deletes the completed jobs ids (with their revisions)
// if worker holds them, or if nobody does and they are unchanged since
// they were fetched: a sweep freed them, but they did succeed.
func deleteCompleted(ids, worker, revisions string) string {
	return `  delete from {{schema}}._private_jobs as j
  using unnest(` + ids + `::bigint[], ` + revisions + `::bigint[]) as c(id, revision)
  where j.id = c.id
    and (j.locked_by = ` + worker + ` or (j.locked_by is null and j.revision = c.revision))`
}

// fetchText returns the fetch statement for a limit of n. Workers ask for
// a handful of distinct sizes, so the cache stays small, and each text is
// prepared once by drivers that cache statements.
func (s *workerSQL) fetchText(flags, local, ride, n int) string {
	key := [4]int{flags, local, ride, n}
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	if t, ok := s.fetchTexts[key]; ok {
		return t
	}
	if s.fetchTexts == nil {
		s.fetchTexts = map[[4]int]string{}
	}
	t := strings.Replace(s.fetch[flags][local][ride], "{{limit}}", strconv.Itoa(n), 1)
	s.fetchTexts[key] = t
	return t
}
