package main

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gworker/gworker/bench/internal/heldsql"
	"github.com/gworker/gworker/core"
)

// recorder wraps a core.Database and counts every statement, and keeps
// the first fetch and complete statements the worker sent, with their
// arguments: the SQL-limit measurement replays exactly core's statements
// without core having to export them.
type recorder struct {
	core.Database
	mu       sync.Mutex
	stmts    map[string]int           // statement kind -> count
	spent    map[string]time.Duration // statement kind -> time until the call returned
	fetch    *captured
	complete *captured
}

type captured struct {
	sql  string
	args []any
}

func newRecorder(db core.Database) *recorder {
	return &recorder{Database: db, stmts: map[string]int{}, spent: map[string]time.Duration{}}
}

// kind classifies a statement by its shape, for the statement counts.
func kind(sql string) string {
	s := strings.ToLower(sql)
	switch {
	case strings.Contains(s, "for update skip locked") && strings.HasPrefix(s, "with done as"):
		// The fetch also records the completions that rode it.
		return "fetch+complete"
	case strings.Contains(s, "for update skip locked"):
		return "fetch"
	case strings.Contains(s, "delete from") && strings.Contains(s, "_private_jobs"):
		return "complete"
	case strings.Contains(s, "last_error"):
		return "fail/return"
	default:
		return "other"
	}
}

func (r *recorder) note(sql string, args []any, d time.Duration) {
	k := kind(sql)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stmts[k]++
	r.spent[k] += d
	switch {
	case k == "fetch" && r.fetch == nil:
		r.fetch = &captured{sql: sql, args: args}
	case k == "complete" && r.complete == nil:
		r.complete = &captured{sql: sql, args: args}
	}
}

func (r *recorder) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	begin := time.Now()
	n, err := r.Database.Exec(ctx, sql, args...)
	r.note(sql, args, time.Since(begin))
	return n, err
}

// Query times the call only: reading the rows happens later, in core.
func (r *recorder) Query(ctx context.Context, sql string, args ...any) (core.Rows, error) {
	begin := time.Now()
	rows, err := r.Database.Query(ctx, sql, args...)
	r.note(sql, args, time.Since(begin))
	return rows, err
}

func (r *recorder) counts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.stmts))
	for k, v := range r.stmts {
		out[k] = v
	}
	return out
}

// average returns the mean time of a kind of statement.
func (r *recorder) average(k string) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stmts[k] == 0 {
		return 0
	}
	return r.spent[k] / time.Duration(r.stmts[k])
}

var placeholder = regexp.MustCompile(`\$(\d+)`)

// bind replaces $N in sql with the SQL text values[N]; a placeholder
// without a value is an error.
func bind(sql string, values map[int]string) (string, error) {
	var missing []string
	out := placeholder.ReplaceAllStringFunc(sql, func(p string) string {
		n, _ := strconv.Atoi(p[1:])
		v, ok := values[n]
		if !ok {
			missing = append(missing, p)
			return p
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("no value for %s in %q", strings.Join(missing, ", "), tailString(sql, 200))
	}
	return out, nil
}

// literal renders a captured argument as SQL text.
func literal(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return "'" + strings.ReplaceAll(v, "'", "''") + "'", nil
	case int:
		return strconv.Itoa(v), nil
	case int32:
		return strconv.Itoa(int(v)), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case []int64:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = strconv.FormatInt(x, 10)
		}
		return "'{" + strings.Join(parts, ",") + "}'", nil
	case []string:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i], _ = literal(x)
		}
		return "array[" + strings.Join(parts, ",") + "]", nil
	}
	return "", fmt.Errorf("cannot render argument %#v (%T) as SQL", v, v)
}

// pgbenchScript builds the pgbench transaction for the SQL limit from core's
// captured fetch and complete statements: fetch up to batch jobs with the
// worker's locking statement as worker pgbench-<client>, then record them
// as done with the worker's complete statement, two round trips as in the
// worker. The fetch's ids and revisions reach the complete through \gset.
//
// The fetch must have the shape "with ... <final update ... returning ...>":
// its final statement becomes one more CTE so that its ids can be gathered.
func pgbenchScript(fetch, complete *captured, batch int) (string, error) {
	if fetch == nil || complete == nil {
		return "", fmt.Errorf("the worker's fetch and complete statements were not captured")
	}
	worker := "('pgbench-' || :client_id::text)"
	values := map[int]string{1: worker}
	if len(fetch.args) < 2 {
		return "", fmt.Errorf("fetch statement has %d arguments, want at least 2", len(fetch.args))
	}
	tasks, err := literal(fetch.args[1])
	if err != nil {
		return "", err
	}
	values[2] = tasks
	f, err := bind(fetch.sql, values)
	if err != nil {
		return "", err
	}
	// core writes the batch size into the text; replay it with ours.
	f = limitRE.ReplaceAllString(f, "limit "+strconv.Itoa(batch))
	if !strings.HasPrefix(strings.ToLower(strings.TrimSpace(f)), "with ") {
		return "", fmt.Errorf("fetch statement does not start with WITH: %q", tailString(f, 200))
	}
	i := strings.LastIndex(strings.ToLower(f), "\nupdate ")
	if i < 0 {
		return "", fmt.Errorf("fetch statement has no final UPDATE: %q", tailString(f, 200))
	}
	head, tail := strings.TrimRight(f[:i], " \n"), f[i+1:]
	fetchIDs := head + ",\nfetched as (\n" + tail + "\n)\nselect coalesce(array_agg(id), '{}')::text as ids, coalesce(array_agg(revision), '{}')::text as revs from fetched\n\\gset\n"
	// complete: $1 = ids (bigint[]), $2 = worker id, $3 = the revisions
	// the fetch returned, in the same order (both aggregates read the rows
	// in one pass).
	c, err := bind(complete.sql, map[int]string{1: ":ids", 2: worker, 3: ":revs"})
	if err != nil {
		return "", err
	}
	return oneLine(fetchIDs) + oneLine(c) + ";\n", nil
}

// oneLine folds a statement onto one line, keeping a trailing \gset on a
// line of its own: pgbench reads one SQL command per line group.
func oneLine(sql string) string {
	gset := strings.HasSuffix(strings.TrimSpace(sql), `\gset`)
	sql = strings.TrimSuffix(strings.TrimSpace(sql), `\gset`)
	s := strings.Join(strings.Fields(sql), " ")
	if gset {
		return s + "\n\\gset\n"
	}
	return s
}

var limitRE = regexp.MustCompile(`(?i)limit \d+`)

// heldPgbenchScript builds the pgbench transaction for the SQL limit of the
// design that holds a batch's row locks in one open transaction instead of
// updating the rows (bench/protoheld is its worker): begin; lock up to
// batch runnable jobs of core's fetched tasks that have no named queue,
// with select ... for update skip locked and no update; delete them by id;
// commit. Four round trips, with the jobs' run between the select and the
// delete. The schema and the task identifiers (the $2 of core's captured
// fetch) are the ones core's own row replays.
func heldPgbenchScript(schema string, fetch *captured, batch int) (string, error) {
	if fetch == nil || len(fetch.args) < 2 {
		return "", fmt.Errorf("the worker's fetch statement and its task identifiers were not captured")
	}
	tasks, err := literal(fetch.args[1])
	if err != nil {
		return "", err
	}
	return "begin;\n" +
		"select coalesce(array_agg(id), '{}')::text as ids from (" + heldsql.Lock(schema, "j.id", tasks, batch) + ") as held\n\\gset\n" +
		heldsql.Delete(schema, ":ids") + ";\n" +
		"commit;\n", nil
}
