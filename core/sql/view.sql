-- The jobs view: the stable, documented way to read jobs. It deliberately has
-- no payload column. Each table is aliased by the name it had before
-- migration 16 (jobs, tasks, job_queues), as in graphile-worker's view, so
-- that the definition PostgreSQL stores (pg_get_viewdef, pg_dump) is the same
-- whichever side created the schema.
create or replace view {{schema}}.jobs as
  select
    jobs.id,
    job_queues.queue_name,
    tasks.identifier as task_identifier,
    jobs.priority,
    jobs.run_at,
    jobs.attempts,
    jobs.max_attempts,
    jobs.last_error,
    jobs.created_at,
    jobs.updated_at,
    jobs.key,
    jobs.locked_at,
    jobs.locked_by,
    jobs.revision,
    jobs.flags
  from {{schema}}._private_jobs jobs
  inner join {{schema}}._private_tasks tasks on tasks.id = jobs.task_id
  left join {{schema}}._private_job_queues job_queues on job_queues.id = jobs.job_queue_id;
