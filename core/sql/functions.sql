-- The public SQL functions of the final schema (graphile-worker migration 20).
-- Every migration step from 16 on ends by running this file, so it must stay
-- idempotent: create or replace only, same signatures. {{schema}} is replaced
-- by the quoted schema name and $$ by a dollar-quote tag that cannot clash
-- with it.

-- add_jobs inserts many jobs at once. Keyed specs replace the unlocked job
-- holding the key; a locked or permanently failed holder loses its key (and
-- any remaining attempts) so that a fresh job can take it.
create or replace function {{schema}}.add_jobs(
  specs {{schema}}.job_spec[],
  job_key_preserve_run_at boolean default false
) returns setof {{schema}}._private_jobs
language plpgsql
as $$
begin
  -- Register unknown tasks and queues. The not-exists guard keeps the
  -- identity sequences from advancing on every call.
  insert into {{schema}}._private_tasks (identifier)
    select distinct spec.identifier
    from unnest(specs) spec
    where not exists (
      select 1 from {{schema}}._private_tasks t where t.identifier = spec.identifier
    )
  on conflict do nothing;

  insert into {{schema}}._private_job_queues (queue_name)
    select distinct spec.queue_name
    from unnest(specs) spec
    where spec.queue_name is not null
      and not exists (
        select 1 from {{schema}}._private_job_queues q where q.queue_name = spec.queue_name
      )
  on conflict do nothing;

  -- A running or dead job keeps running (or stays failed) but gives up its key.
  update {{schema}}._private_jobs j
    set key = null,
        attempts = j.max_attempts,
        updated_at = now()
    from unnest(specs) spec
    where spec.job_key is not null
      and j.key = spec.job_key
      and j.is_available is not true;

  perform pg_notify(
    'jobs:insert',
    '{"r":' || random()::text || ',"count":' || coalesce(array_length(specs, 1), 0)::text || '}'
  );

  return query
    insert into {{schema}}._private_jobs as j (
      job_queue_id, task_id, payload, run_at, max_attempts, key, priority, flags
    )
    select
      q.id,
      t.id,
      coalesce(spec.payload, '{}'::json),
      coalesce(spec.run_at, now()),
      coalesce(spec.max_attempts, 25::smallint),
      spec.job_key,
      coalesce(spec.priority, 0::smallint),
      (select jsonb_object_agg(f, true) from unnest(spec.flags) f)
    from unnest(specs) spec
    inner join {{schema}}._private_tasks t on t.identifier = spec.identifier
    left join {{schema}}._private_job_queues q on q.queue_name = spec.queue_name
    on conflict (key) do update set
      job_queue_id = excluded.job_queue_id,
      task_id = excluded.task_id,
      payload = case
        when json_typeof(j.payload) = 'array' and json_typeof(excluded.payload) = 'array'
          then (j.payload::jsonb || excluded.payload::jsonb)::json
        else excluded.payload
      end,
      max_attempts = excluded.max_attempts,
      run_at = case
        when job_key_preserve_run_at is true and j.attempts = 0 then j.run_at
        else excluded.run_at
      end,
      priority = excluded.priority,
      revision = j.revision + 1,
      flags = excluded.flags,
      attempts = 0,
      last_error = null,
      updated_at = now()
    where j.locked_at is null
    returning *;
end;
$$;

-- add_job adds one job; the keyed modes replace and preserve_run_at go
-- through add_jobs, unsafe_dedupe leaves an existing job untouched.
create or replace function {{schema}}.add_job(
  identifier text,
  payload json default null,
  queue_name text default null,
  run_at timestamptz default null,
  max_attempts int default null,
  job_key text default null,
  priority int default null,
  flags text[] default null,
  job_key_mode text default 'replace'
) returns {{schema}}._private_jobs
language plpgsql
as $$
declare
  v_job {{schema}}._private_jobs;
begin
  if add_job.job_key is null
    or add_job.job_key_mode is null
    or add_job.job_key_mode in ('replace', 'preserve_run_at')
  then
    select * into v_job
    from {{schema}}.add_jobs(
      array[(
        add_job.identifier,
        add_job.payload,
        add_job.queue_name,
        add_job.run_at,
        add_job.max_attempts::smallint,
        add_job.job_key,
        add_job.priority::smallint,
        add_job.flags
      )::{{schema}}.job_spec],
      (add_job.job_key_mode = 'preserve_run_at')
    )
    limit 1;
    return v_job;
  elsif add_job.job_key_mode = 'unsafe_dedupe' then
    insert into {{schema}}._private_tasks (identifier)
      select add_job.identifier
      where not exists (
        select 1 from {{schema}}._private_tasks t where t.identifier = add_job.identifier
      )
    on conflict do nothing;

    if add_job.queue_name is not null then
      insert into {{schema}}._private_job_queues (queue_name)
        select add_job.queue_name
        where not exists (
          select 1 from {{schema}}._private_job_queues q where q.queue_name = add_job.queue_name
        )
      on conflict do nothing;
    end if;

    insert into {{schema}}._private_jobs as j (
      job_queue_id, task_id, payload, run_at, max_attempts, key, priority, flags
    )
    select
      (select q.id from {{schema}}._private_job_queues q where q.queue_name = add_job.queue_name),
      t.id,
      coalesce(add_job.payload, '{}'::json),
      coalesce(add_job.run_at, now()),
      coalesce(add_job.max_attempts::smallint, 25::smallint),
      add_job.job_key,
      coalesce(add_job.priority::smallint, 0::smallint),
      (select jsonb_object_agg(f, true) from unnest(add_job.flags) f)
    from {{schema}}._private_tasks t
    where t.identifier = add_job.identifier
    on conflict (key) do update set
      revision = j.revision + 1,
      updated_at = now()
    returning * into v_job;

    if v_job.revision = 0 then
      perform pg_notify('jobs:insert', '{"r":' || random()::text || ',"count":1}');
    end if;
    return v_job;
  else
    raise exception 'Invalid job_key_mode value, expected ''replace'', ''preserve_run_at'' or ''unsafe_dedupe''.'
      using errcode = 'GWBKM';
  end if;
end;
$$;

-- The functions below skip jobs that a worker holds, unless the lock is older
-- than the 4 hour expiry that every graphile-worker honours.

create or replace function {{schema}}.complete_jobs(
  job_ids bigint[]
) returns setof {{schema}}._private_jobs
language sql
as $$
  delete from {{schema}}._private_jobs j
  where j.id = any(job_ids)
    and (j.locked_at is null or j.locked_at < now() - interval '4 hours')
  returning *;
$$;

create or replace function {{schema}}.permanently_fail_jobs(
  job_ids bigint[],
  error_message text default null
) returns setof {{schema}}._private_jobs
language sql
as $$
  update {{schema}}._private_jobs j
  set last_error = coalesce(error_message, 'Manually marked as failed'),
      attempts = j.max_attempts,
      updated_at = now()
  where j.id = any(job_ids)
    and (j.locked_at is null or j.locked_at < now() - interval '4 hours')
  returning *;
$$;

create or replace function {{schema}}.reschedule_jobs(
  job_ids bigint[],
  run_at timestamptz default null,
  priority int default null,
  attempts int default null,
  max_attempts int default null
) returns setof {{schema}}._private_jobs
language sql
as $$
  update {{schema}}._private_jobs j
  set run_at = coalesce(reschedule_jobs.run_at, j.run_at),
      priority = coalesce(reschedule_jobs.priority::smallint, j.priority),
      attempts = coalesce(reschedule_jobs.attempts::smallint, j.attempts),
      max_attempts = coalesce(reschedule_jobs.max_attempts::smallint, j.max_attempts),
      updated_at = now()
  where j.id = any(job_ids)
    and (j.locked_at is null or j.locked_at < now() - interval '4 hours')
  returning *;
$$;

-- remove_job deletes the keyed job if nobody holds it; a held job instead loses
-- its key and its remaining attempts, so it is not retried after this run.
create or replace function {{schema}}.remove_job(
  job_key text
) returns {{schema}}._private_jobs
language plpgsql
strict
as $$
declare
  v_job {{schema}}._private_jobs;
begin
  delete from {{schema}}._private_jobs j
  where j.key = remove_job.job_key
    and (j.locked_at is null or j.locked_at < now() - interval '4 hours')
  returning * into v_job;
  if found then
    perform pg_notify('jobs:insert', '{"r":' || random()::text || ',"count":-1}');
    return v_job;
  end if;

  update {{schema}}._private_jobs j
  set key = null,
      attempts = j.max_attempts,
      updated_at = now()
  where j.key = remove_job.job_key
  returning * into v_job;
  return v_job;
end;
$$;

create or replace function {{schema}}.force_unlock_workers(
  worker_ids text[]
) returns void
language sql
as $$
  update {{schema}}._private_jobs j
  set locked_at = null, locked_by = null
  where j.locked_by = any(worker_ids);

  update {{schema}}._private_job_queues q
  set locked_at = null, locked_by = null
  where q.locked_by = any(worker_ids);
$$;
