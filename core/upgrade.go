package core

import (
	"context"
	"fmt"
)

// upgradeSteps brings a schema that graphile-worker left at migration id-1 to
// migration id. Only ids 12-20 exist: below 11 gworker refuses, and a fresh
// install writes the final state at once.
//
// Steps 12 and 14 only changed function bodies and signatures that step 16
// replaces wholesale, so their work is done there; every step from 16 on ends
// with all public functions in their final form, which makes a partially
// upgraded schema usable at every ledger position.
var upgradeSteps = map[int]func(context.Context, *migrator, Executor) error{
	12: noStep,
	13: func(ctx context.Context, m *migrator, ex Executor) error {
		return m.exec(ctx, ex, "alter type {{schema}}.job_spec"+
			" alter attribute max_attempts type smallint,"+
			" alter attribute priority type smallint")
	},
	14: noStep,
	15: func(ctx context.Context, m *migrator, ex Executor) error {
		// Leftovers of graphile-worker's first schema, unused since 11.
		for _, fn := range []string{"jobs__increase_job_queue_count", "jobs__decrease_job_queue_count", "tg__update_timestamp"} {
			if err := m.exec(ctx, ex, "drop function if exists {{schema}}."+fn+"()"); err != nil {
				return err
			}
		}
		// Created here on the pre-16 table names so that graphile-worker's
		// own step 16, which replaces it, finds it if it takes over from here.
		return m.exec(ctx, ex, `create or replace function {{schema}}.force_unlock_workers(worker_ids text[]) returns void
language sql as $$
  update {{schema}}.jobs set locked_at = null, locked_by = null where locked_by = any(worker_ids);
  update {{schema}}.job_queues set locked_at = null, locked_by = null where locked_by = any(worker_ids);
$$`)
	},
	16: func(ctx context.Context, m *migrator, ex Executor) error {
		for _, t := range []string{"jobs", "job_queues", "tasks", "known_crontabs"} {
			if err := m.exec(ctx, ex, "alter table {{schema}}."+t+" rename to _private_"+t); err != nil {
				return err
			}
			if err := m.exec(ctx, ex, "alter table {{schema}}._private_"+t+" enable row level security"); err != nil {
				return err
			}
		}
		// The return types change to _private_jobs, so earlier definitions
		// (and their older overloads) must go before the final ones exist.
		if err := m.dropFunctions(ctx, ex, publicFunctions...); err != nil {
			return err
		}
		return m.exec(ctx, ex, sqlFile("functions.sql"))
	},
	17: func(ctx context.Context, m *migrator, ex Executor) error {
		return m.exec(ctx, ex, sqlFile("view.sql"))
	},
	18: func(ctx context.Context, m *migrator, ex Executor) error {
		// add_jobs now notifies itself; the statement trigger that did it
		// before must go, or every insert would wake workers twice.
		if err := m.dropJobTriggers(ctx, ex); err != nil {
			return err
		}
		return m.exec(ctx, ex, sqlFile("functions.sql"))
	},
	19: noStep,
	20: func(ctx context.Context, m *migrator, ex Executor) error {
		return m.exec(ctx, ex, sqlFile("functions.sql"))
	},
}

// publicFunctions are the functions of the final schema.
var publicFunctions = []string{
	"add_job", "add_jobs", "complete_jobs", "permanently_fail_jobs",
	"reschedule_jobs", "remove_job", "force_unlock_workers",
}

func noStep(context.Context, *migrator, Executor) error { return nil }

func (m *migrator) exec(ctx context.Context, ex Executor, sql string) error {
	_, err := ex.Exec(ctx, m.r.render(sql))
	return err
}

// dropFunctions drops every overload of the named functions in the schema.
// The signatures come from the catalog as regprocedure text, which the
// server quotes itself.
func (m *migrator) dropFunctions(ctx context.Context, ex Executor, names ...string) error {
	rows, err := ex.Query(ctx,
		"select p.oid::regprocedure::text from pg_catalog.pg_proc p"+
			" join pg_catalog.pg_namespace n on n.oid = p.pronamespace"+
			" where n.nspname = $1 and p.proname = any($2::text[])",
		m.schema, names)
	if err != nil {
		return err
	}
	sigs, err := collectStrings(rows)
	if err != nil {
		return err
	}
	for _, sig := range sigs {
		if _, err := ex.Exec(ctx, "drop function "+sig); err != nil {
			return err
		}
	}
	return nil
}

// dropJobTriggers drops the user-level triggers on _private_jobs and their
// trigger functions when those live in the schema.
func (m *migrator) dropJobTriggers(ctx context.Context, ex Executor) error {
	rows, err := ex.Query(ctx,
		"select t.tgname::text, p.oid::regprocedure::text, n.nspname::text"+
			" from pg_catalog.pg_trigger t"+
			" join pg_catalog.pg_proc p on p.oid = t.tgfoid"+
			" join pg_catalog.pg_namespace n on n.oid = p.pronamespace"+
			" where t.tgrelid = $1::regclass and not t.tgisinternal",
		m.r.quoted+"._private_jobs")
	if err != nil {
		return err
	}
	defer rows.Close()
	type trig struct{ name, fn, fnSchema string }
	var trigs []trig
	for rows.Next() {
		var t trig
		if err := rows.Scan(&t.name, &t.fn, &t.fnSchema); err != nil {
			return err
		}
		trigs = append(trigs, t)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, t := range trigs {
		if err := m.exec(ctx, ex, fmt.Sprintf("drop trigger %s on {{schema}}._private_jobs", quoteIdent(t.name))); err != nil {
			return err
		}
		if t.fnSchema == m.schema {
			if _, err := ex.Exec(ctx, "drop function if exists "+t.fn); err != nil {
				return err
			}
		}
	}
	return nil
}

func collectStrings(rows Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
