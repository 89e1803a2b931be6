-- gworker migration 2: the task identifiers each registered worker runs, so
-- that Utils.ListTasks can tell the tasks no live gworker worker handles
-- (jobs for them wait forever). Workers write it when they register; rows
-- of older workers keep the empty default. {{schema}} is replaced by the
-- quoted schema name.

alter table {{schema}}._private_gworker_workers add column tasks text[] not null default '{}';
