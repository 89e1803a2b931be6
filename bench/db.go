package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The schemas the benchmark creates, and drops when it starts and ends.
// gworker's two configurations share one.
const (
	schemaGworker = "gwbench_gw"
	schemaNode    = "gwbench_node"
	schemaRiver   = "gwbench_river"
)

// db is the benchmark's own connection pool, for preparing and checking.
type db struct {
	pool *pgxpool.Pool
}

func q(schema string) string { return pgx.Identifier{schema}.Sanitize() }

func (d *db) exec(ctx context.Context, sql string, args ...any) error {
	_, err := d.pool.Exec(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", firstWords(sql), err)
	}
	return nil
}

func (d *db) count(ctx context.Context, sql string, args ...any) (int64, error) {
	var n int64
	if err := d.pool.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("%s: %w", firstWords(sql), err)
	}
	return n, nil
}

func firstWords(sql string) string {
	f := strings.Fields(sql)
	if len(f) > 6 {
		f = f[:6]
	}
	return strings.Join(f, " ")
}

func (d *db) dropSchemas(ctx context.Context) error {
	for _, s := range []string{schemaGworker, schemaNode, schemaRiver} {
		if err := d.exec(ctx, "drop schema if exists "+q(s)+" cascade"); err != nil {
			return err
		}
	}
	return nil
}

// jobsTable is the table holding a schema's jobs.
func jobsTable(schema string) string {
	if schema == schemaRiver {
		return q(schema) + ".river_job"
	}
	return q(schema) + "._private_jobs"
}

// emptyJobs truncates a schema's jobs (and, for graphile-worker's schema,
// its job queues).
func (d *db) emptyJobs(ctx context.Context, schema string) error {
	if schema == schemaRiver {
		return d.exec(ctx, "truncate "+jobsTable(schema))
	}
	return d.exec(ctx, "truncate "+jobsTable(schema)+", "+q(schema)+"._private_job_queues")
}

// fillGraphile adds n "noop" jobs to a graphile-worker schema with add_jobs,
// 100,000 per call, as graphile-worker's perfTest/init.js does.
func (d *db) fillGraphile(ctx context.Context, schema string, n int) error {
	s := q(schema)
	for done := 0; done < n; {
		batch := min(n-done, 100_000)
		err := d.exec(ctx, `select count(*) from `+s+`.add_jobs(array(
  select json_populate_record(null::`+s+`.job_spec,
    json_build_object('identifier', 'noop', 'payload', json_build_object('i', i)))
  from generate_series($1::int, $2::int) i))`, done+1, done+batch)
		if err != nil {
			return err
		}
		done += batch
	}
	return nil
}

// settle leaves the server in the same state before every timed run:
// statistics fresh, dead rows gone, dirty pages written.
func (d *db) settle(ctx context.Context, schema string) error {
	tables := []string{jobsTable(schema)}
	if schema != schemaRiver {
		tables = append(tables, q(schema)+"._private_job_queues")
	}
	for _, t := range tables {
		if err := d.exec(ctx, "vacuum analyze "+t); err != nil {
			return err
		}
	}
	return d.exec(ctx, "checkpoint")
}

// remaining counts the jobs not done yet.
func (d *db) remaining(ctx context.Context, schema string) (int64, error) {
	if schema == schemaRiver {
		return d.count(ctx, "select count(*) from "+jobsTable(schema)+" where state <> 'completed'")
	}
	return d.count(ctx, "select count(*) from "+jobsTable(schema))
}
