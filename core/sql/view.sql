-- The jobs view: the stable, documented way to read jobs. It deliberately has
-- no payload column.
create or replace view {{schema}}.jobs as
  select
    j.id,
    q.queue_name,
    t.identifier as task_identifier,
    j.priority,
    j.run_at,
    j.attempts,
    j.max_attempts,
    j.last_error,
    j.created_at,
    j.updated_at,
    j.key,
    j.locked_at,
    j.locked_by,
    j.revision,
    j.flags
  from {{schema}}._private_jobs j
  inner join {{schema}}._private_tasks t on t.id = j.task_id
  left join {{schema}}._private_job_queues q on q.id = j.job_queue_id;
