-- gworker migration 3: two tables of gworker's own, which graphile-worker
-- neither reads nor writes. {{schema}} is replaced by the quoted schema name.
--
-- _private_gworker_throughput: how many jobs each gworker worker finished,
-- per task and per minute. A worker adds what it counted since its last
-- heartbeat with each heartbeat, into the minute of the database's clock,
-- so that a page can draw jobs per second without Prometheus. Rows older
-- than a day are deleted by the same statement.
create table {{schema}}._private_gworker_throughput (
  bucket timestamptz not null,
  worker_id text not null,
  task_identifier text not null,
  completed bigint not null default 0,
  failed bigint not null default 0,
  constraint _private_gworker_throughput_pkey primary key (bucket, worker_id, task_identifier)
);

alter table {{schema}}._private_gworker_throughput enable row level security;

-- _private_gworker_audit: every change made through the admin page or API
-- (who, what, which jobs, when, and what came of it).
create table {{schema}}._private_gworker_audit (
  id bigint generated always as identity,
  at timestamptz not null default now(),
  actor text not null,
  action text not null,
  -- The request's details as JSON: the filter, the reason, the new run_at.
  detail jsonb not null default '{}',
  -- The jobs changed (at most the first 1000).
  job_ids bigint[] not null default '{}',
  matched bigint not null default 0,
  changed bigint not null default 0,
  -- The error, when the change failed.
  error text,
  constraint _private_gworker_audit_pkey primary key (id)
);

alter table {{schema}}._private_gworker_audit enable row level security;
