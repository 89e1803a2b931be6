// Package heldsql holds the SQL of the design that holds a batch's row
// locks in one open transaction (bench/README.md), shared by its worker
// (bench/protoheld) and its SQL-limit row (bench's pgbench script), so that
// the two measure the same statements.
package heldsql

import (
	"strconv"

	"github.com/jackc/pgx/v5"
)

// Lock is the statement that claims a batch: the given columns (of the
// jobs table, aliased j) of up to batch runnable jobs of the tasks named by
// the SQL expression tasks (a text[]), without a named queue, in core's
// order, locked with FOR UPDATE SKIP LOCKED and not updated. The filter is
// core's for jobs without a named queue, which lets the planner use
// jobs_no_queue_index. It is one line, as pgbench wants.
func Lock(schema, columns, tasks string, batch int) string {
	s := pgx.Identifier{schema}.Sanitize()
	return "select " + columns + " from " + s + "._private_jobs as j" +
		" where j.is_available = true and j.job_queue_id is null and j.run_at <= now()" +
		" and j.task_id = any(array(select t.id from " + s + "._private_tasks as t where t.identifier = any(" + tasks + "::text[])))" +
		" order by j.priority asc, j.run_at asc limit " + strconv.Itoa(batch) + " for update skip locked"
}

// Delete is the statement that makes a batch's outcome final: it deletes
// the jobs whose ids the SQL expression ids (a bigint[]) holds.
func Delete(schema, ids string) string {
	return "delete from " + pgx.Identifier{schema}.Sanitize() + "._private_jobs where id = any(" + ids + "::bigint[])"
}
