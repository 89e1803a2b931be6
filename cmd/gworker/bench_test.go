package main

import (
	"regexp"
	"strconv"
	"testing"
)

// benchLine is the whole output of gworker bench drain.
var benchLine = regexp.MustCompile(`^jobs=(\d+) seconds=(\d+\.\d{3}) jobs_per_sec=(\d+)\n$`)

// addNoopJobs adds n jobs for the bench task with one add_jobs call, as a
// user filling the queue from SQL would.
func (b *bundle) addNoopJobs(t *testing.T, n int) {
	t.Helper()
	_, err := b.pool.Exec(b.ctx, b.sql(`select S.add_jobs(array(
  select json_populate_record(null::S.job_spec,
    json_build_object('identifier', 'noop', 'payload', json_build_object('i', i)))
  from generate_series(1, $1::int) i))`), n)
	if err != nil {
		t.Fatalf("add %d noop jobs: %v", n, err)
	}
}

func TestBenchDrainRunsEveryNoopJobAndPrintsTheRate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"defaults", nil},
		{"local queue and batch delay", []string{"-j", "8", "--local-queue", "100", "--refetch-delay", "5ms", "--batch-delay", "2ms"}},
		{"durable fetch", []string{"--durable-fetch"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.migrate(t)
			b.addNoopJobs(t, 500)
			// A job of another task stays: drain runs only noop.
			if r := b.cli(t, "add", "other"); r.code != 0 {
				t.Fatalf("add: exit %d, stderr %s", r.code, r.stderr)
			}
			r := b.cli(t, append([]string{"bench", "drain"}, tc.args...)...)
			if r.code != 0 {
				t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
			}
			m := benchLine.FindStringSubmatch(r.stdout)
			if m == nil {
				t.Fatalf("stdout %q is not one line jobs=N seconds=S jobs_per_sec=R", r.stdout)
			}
			if m[1] != "500" {
				t.Errorf("jobs=%s, want 500", m[1])
			}
			if s, _ := strconv.ParseFloat(m[2], 64); s <= 0 {
				t.Errorf("seconds=%s, want > 0", m[2])
			}
			if n := b.count(t, "select count(*) from S._private_jobs j join S._private_tasks t on t.id = j.task_id where t.identifier = 'noop'"); n != 0 {
				t.Errorf("%d noop jobs left in the table, want 0", n)
			}
			if n := b.count(t, "select count(*) from S._private_jobs"); n != 1 {
				t.Errorf("%d jobs left in the table, want 1 (the other task's)", n)
			}
			if r.stderr != "" {
				t.Errorf("stderr not empty: %s", r.stderr)
			}
		})
	}
}

func TestBenchNeedsTheDrainSubcommand(t *testing.T) {
	t.Parallel()
	env := map[string]string{envDatabaseURL: "postgres://127.0.0.1:1/nowhere"}
	for _, args := range [][]string{{"bench"}, {"bench", "fill"}, {"bench", "drain", "extra"}} {
		r := runCLI(t.Context(), env, args...)
		assertOneLineError(t, r, "bench")
		if r.code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, r.code, exitUsage)
		}
	}
}
