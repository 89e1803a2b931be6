-- gworker migration 1 (gworker's own ledger, _private_gworker_migrations; never
-- graphile-worker's): the registry of running gworker workers, for dead-worker
-- recovery. Each worker inserts its row at start, refreshes last_heartbeat_at
-- every heartbeat interval and deletes the row at a clean shutdown. A sweeper
-- returns the jobs of workers whose heartbeat is stale. graphile-worker
-- neither reads nor writes this table. {{schema}} is replaced by the quoted
-- schema name.

create table {{schema}}._private_gworker_workers (
  -- The pool id the worker writes to locked_by (pool-<18 hex>).
  worker_id text not null,
  hostname text not null default '',
  pid int not null default 0,
  -- gworker's module version, "(devel)" when built from a checkout.
  version text not null default '',
  concurrency int not null default 0,
  run_once boolean not null default false,
  -- A worker is judged dead only when its heartbeat is older than twice its
  -- own interval, whatever threshold a sweeper is given.
  heartbeat_interval interval not null,
  started_at timestamptz not null default now(),
  last_heartbeat_at timestamptz not null default now(),
  constraint _private_gworker_workers_pkey primary key (worker_id)
);

alter table {{schema}}._private_gworker_workers enable row level security;
