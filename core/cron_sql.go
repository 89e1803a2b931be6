package core

// cronSQL holds the cron runner's statements, rendered for one schema.
type cronSQL struct {
	register string
	schedule string
}

func newCronSQL(r renderer) cronSQL {
	return cronSQL{
		// $1: the entries' identifiers; $2: the start time. Inserts the
		// identifiers not yet known with known_since = $2, and returns
		// the rows of those that were known before this statement (the
		// main query does not see the CTE's rows).
		register: r.render(`with unknown as (
  insert into {{schema}}._private_known_crontabs (identifier, known_since)
  select i, $2::timestamptz from unnest($1::text[]) as i
  on conflict (identifier) do nothing
)
select k.identifier, k.known_since, k.last_execution
from {{schema}}._private_known_crontabs as k
where k.identifier = any($1::text[])`),

		// $1: the minute; $2: a JSON array of the entries due at it (see
		// cronSpec). Each entry's row moves last_execution forward to $1
		// only if it is behind (or NULL); a row not moved means another
		// worker, gworker or graphile-worker, already scheduled this minute.
		// Only entries whose row moved get their job, added by add_job with
		// run_at = $1. Returns the identifiers that got a job, and the job
		// ids.
		schedule: r.render(`with spec as (
  select e.n, e.v->>'identifier' as identifier, e.v->>'task' as task, e.v->'payload' as payload,
         e.v->>'queue_name' as queue_name, (e.v->>'max_attempts')::int as max_attempts,
         e.v->>'job_key' as job_key, (e.v->>'priority')::int as priority, e.v->>'job_key_mode' as job_key_mode
  from json_array_elements($2::json) with ordinality as e (v, n)
), moved as (
  insert into {{schema}}._private_known_crontabs as k (identifier, known_since, last_execution)
  select spec.identifier, $1::timestamptz, $1::timestamptz from spec
  on conflict (identifier) do update set last_execution = excluded.last_execution
  where k.last_execution is null or k.last_execution < excluded.last_execution
  returning k.identifier
)
select spec.identifier,
       ({{schema}}.add_job(spec.task, spec.payload, spec.queue_name, $1::timestamptz, spec.max_attempts,
                           spec.job_key, spec.priority, null, spec.job_key_mode)).id
from spec join moved on moved.identifier = spec.identifier
order by spec.n`),
	}
}
