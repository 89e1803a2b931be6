-- Tables, type and indexes of the final schema (graphile-worker migration 20),
-- created directly for a fresh install. Constraint, sequence and index names
-- carry the names the Node migrations left behind, so both tools see the same
-- catalog. {{schema}} is replaced by the quoted schema name.

create table {{schema}}._private_job_queues (
  id int generated always as identity (sequence name {{schema}}.job_queues_id_seq),
  queue_name text not null,
  locked_at timestamptz,
  locked_by text,
  is_available boolean generated always as (locked_at is null) stored not null,
  constraint job_queues_pkey1 primary key (id),
  constraint job_queues_queue_name_key unique (queue_name),
  constraint job_queues_queue_name_check check (length(queue_name) <= 128)
);

create table {{schema}}._private_tasks (
  id int generated always as identity (sequence name {{schema}}.tasks_id_seq),
  identifier text not null,
  constraint tasks_pkey primary key (id),
  constraint tasks_identifier_key unique (identifier),
  constraint tasks_identifier_check check (length(identifier) <= 128)
);

create table {{schema}}._private_jobs (
  id bigint generated always as identity (sequence name {{schema}}.jobs_id_seq1),
  job_queue_id int,
  task_id int not null,
  payload json not null default '{}'::json,
  priority smallint not null default 0,
  run_at timestamptz not null default now(),
  attempts smallint not null default 0,
  max_attempts smallint not null default 25,
  last_error text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  key text,
  locked_at timestamptz,
  locked_by text,
  revision int not null default 0,
  flags jsonb,
  is_available boolean generated always as (locked_at is null and attempts < max_attempts) stored not null,
  constraint jobs_pkey1 primary key (id),
  constraint jobs_key_key1 unique (key),
  constraint jobs_key_check check (length(key) > 0 and length(key) <= 512),
  constraint jobs_max_attempts_check check (max_attempts >= 1)
);

create index jobs_main_index on {{schema}}._private_jobs
  using btree (priority, run_at) include (id, task_id, job_queue_id)
  where is_available = true;

create index jobs_no_queue_index on {{schema}}._private_jobs
  using btree (priority, run_at) include (id, task_id)
  where is_available = true and job_queue_id is null;

create table {{schema}}._private_known_crontabs (
  identifier text not null,
  known_since timestamptz not null,
  last_execution timestamptz,
  constraint known_crontabs_pkey primary key (identifier)
);

alter table {{schema}}._private_job_queues enable row level security;
alter table {{schema}}._private_tasks enable row level security;
alter table {{schema}}._private_jobs enable row level security;
alter table {{schema}}._private_known_crontabs enable row level security;

create type {{schema}}.job_spec as (
  identifier text,
  payload json,
  queue_name text,
  run_at timestamptz,
  max_attempts smallint,
  job_key text,
  priority smallint,
  flags text[]
);
