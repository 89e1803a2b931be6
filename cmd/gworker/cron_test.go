package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gworker/gworker/internal/testkit"
)

// writeCrontab writes text to a file named crontab in a new directory.
func writeCrontab(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "crontab")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCronCheckPrintsNextFireTimesInUTC(t *testing.T) {
	t.Parallel()
	file := writeCrontab(t, `
# comments and blank lines are skipped
30 4 * * * send_report ?fill=2h {to: 'ops'}
0 9 * * 1 standup ?id=monday_standup&tz=Europe/Paris
0 0 30 2 * never_runs
`)
	r := runCLI(context.Background(), nil, "cron", "check", file, "--from", "2024-03-29T12:00:00+01:00", "--count", "3")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	// Paris is UTC+1 on March 25, UTC+2 from March 31 (DST).
	want := `IDENTIFIER       TASK          NEXT (UTC)
send_report      send_report   2024-03-30T04:30:00Z
                               2024-03-31T04:30:00Z
                               2024-04-01T04:30:00Z
monday_standup   standup       2024-04-01T07:00:00Z
                               2024-04-08T07:00:00Z
                               2024-04-15T07:00:00Z
never_runs       never_runs    never
`
	if r.stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", r.stdout, want)
	}
}

func TestCronCheckJSON(t *testing.T) {
	t.Parallel()
	file := writeCrontab(t, "*/20 * * * * poll\n0 0 30 2 * never_runs\n")
	r := runCLI(context.Background(), nil, "cron", "check", "--json", file, "--from", "2024-01-01T00:00:00Z")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("stdout is not a JSON array: %v\n%s", err, r.stdout)
	}
	want := `[{"identifier":"poll","next":["2024-01-01T00:20:00Z","2024-01-01T00:40:00Z","2024-01-01T01:00:00Z","2024-01-01T01:20:00Z","2024-01-01T01:40:00Z"],"task":"poll"},` +
		`{"identifier":"never_runs","next":[],"task":"never_runs"}]`
	if b, _ := json.Marshal(got); string(b) != want {
		t.Errorf("JSON %s\nwant %s", b, want)
	}

	// An empty crontab is an empty array.
	empty := writeCrontab(t, "# nothing yet\n")
	r = runCLI(context.Background(), nil, "cron", "check", empty, "--json")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("empty crontab: exit %d, stdout %q", r.code, r.stdout)
	}
}

func TestCronCheckDefaultsToFiveTimesAfterNow(t *testing.T) {
	t.Parallel()
	file := writeCrontab(t, "* * * * * tick\n")
	before := time.Now()
	r := runCLI(context.Background(), nil, "cron", "check", file, "--json")
	var got []cronEntry
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != 0 || len(got) != 1 || len(got[0].Next) != 5 {
		t.Fatalf("exit %d, stdout %s (%v); want one entry with 5 times", r.code, r.stdout, err)
	}
	first, err := time.Parse(time.RFC3339, got[0].Next[0])
	if err != nil || !first.After(before) || first.After(before.Add(2*time.Minute)) {
		t.Errorf("first fire time %v (%v), want the minute after %v", first, err, before)
	}
}

func TestCronCheckReportsEachErrorWithLineAndColumn(t *testing.T) {
	t.Parallel()
	file := writeCrontab(t, "0 4 * * * fine\n0 24 * * * bad_hour\n* * * * * bad_max ?max=0\n")
	r := runCLI(context.Background(), nil, "cron", "check", file)
	if r.code != exitError || r.stdout != "" {
		t.Fatalf("exit %d, stdout %q; want 1 and nothing", r.code, r.stdout)
	}
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if len(lines) != 3 ||
		!strings.HasPrefix(lines[0], file+": line 2, column 3: ") || !strings.Contains(lines[0], "24") ||
		!strings.HasPrefix(lines[1], file+": line 3, column ") || !strings.Contains(lines[1], "max") ||
		lines[2] != "gworker: crontab "+file+" has errors" {
		t.Errorf("stderr:\n%s\nwant one line per error with line and column, then a summary", r.stderr)
	}
}

func TestCronCheckUsageErrors(t *testing.T) {
	t.Parallel()
	file := writeCrontab(t, "* * * * * tick\n")
	for _, tt := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"cron"}, exitUsage, []string{"check FILE"}},
		{[]string{"cron", "lsit"}, exitUsage, []string{`"lsit"`, "did you mean list?"}},
		{[]string{"cron", "list", file}, exitUsage, []string{"cron list takes no arguments"}},
		{[]string{"cron", "check"}, exitUsage, []string{"one FILE"}},
		{[]string{"cron", "check", file, file}, exitUsage, []string{"one FILE"}},
		{[]string{"cron", "check", file, "--count", "0"}, exitUsage, []string{"--count"}},
		{[]string{"cron", "check", file, "--from", "tomorrow"}, exitUsage, []string{"--from", "RFC 3339"}},
		{[]string{"cron", "check", file + ".missing"}, exitError, []string{file + ".missing", "no such file"}},
	} {
		r := runCLI(context.Background(), nil, tt.args...)
		assertOneLineError(t, r, tt.want...)
		if r.code != tt.code {
			t.Errorf("%v: exit %d, want %d", tt.args, r.code, tt.code)
		}
	}
}

func TestLoadCrontabUsesTheDefaultFileWhenPresent(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	def := filepath.Join(dir, "crontab")

	// No default file: no cron.
	if text, err := loadCrontab("", def, false, log); err != nil || text != "" {
		t.Errorf("without ./crontab: %q, %v; want no crontab", text, err)
	}
	if err := os.WriteFile(def, []byte("* * * * * tick\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if text, err := loadCrontab("", def, false, log); err != nil || text != "* * * * * tick\n" {
		t.Errorf("with ./crontab: %q, %v; want its text", text, err)
	}
	// --once: no cron, the default file is not read.
	if text, err := loadCrontab("", def, true, log); err != nil || text != "" {
		t.Errorf("--once: %q, %v; want no crontab", text, err)
	}
	// An explicit file wins, and must exist.
	other := writeCrontab(t, "0 * * * * hourly\n")
	if text, err := loadCrontab(other, def, false, log); err != nil || text != "0 * * * * hourly\n" {
		t.Errorf("--crontab FILE: %q, %v", text, err)
	}
	if _, err := loadCrontab(filepath.Join(dir, "missing"), def, false, log); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing --crontab FILE: %v, want an error naming it", err)
	}
	// A bad default file is an error too, not silently skipped.
	if err := os.WriteFile(def, []byte("* * * * *\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadCrontab("", def, false, log); err == nil || !strings.Contains(err.Error(), "line 1, column") {
		t.Errorf("bad ./crontab: %v, want the parse error", err)
	}
}

func TestRunCrontabErrorsAreReported(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tasks := t.TempDir()
	writeScript(t, tasks, "noop.sh", "exit 0\n")
	missing := filepath.Join(t.TempDir(), "no_crontab")
	r := b.cli(t, "run", "--tasks", tasks, "--crontab", missing)
	assertOneLineError(t, r, missing, "no such file")

	bad := writeCrontab(t, "0 4 * * * fine\n0 24 * * * bad_hour\n")
	r = b.cli(t, "run", "--tasks", tasks, "--crontab", bad)
	assertOneLineError(t, r, bad, "line 2, column 3")
	if r.code != exitError {
		t.Errorf("exit %d, want %d", r.code, exitError)
	}

	r = b.cli(t, "run", "--once", "--tasks", tasks, "--crontab", bad)
	assertOneLineError(t, r, "--crontab", "--once")
	if r.code != exitUsage {
		t.Errorf("exit %d, want %d", r.code, exitUsage)
	}
}

// The crontab reaches the worker: an entry known since long ago with a fill
// period is back-filled as soon as run starts, without waiting a minute.
func TestRunSchedulesTheCrontab(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.migrate(t)
	tasks := t.TempDir()
	writeScript(t, tasks, "noop.sh", "exit 0\n")
	if _, err := b.pool.Exec(b.ctx, b.sql(`insert into S._private_known_crontabs (identifier, known_since, last_execution)
		values ('cli_cron', now() - interval '1 day', now() - interval '1 day')`)); err != nil {
		t.Fatal(err)
	}
	file := writeCrontab(t, "* * * * * cli_cron ?fill=10m {from: 'cli'}\n")

	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	done := make(chan result, 1)
	go func() { done <- runCLI(ctx, b.env(), "run", "--tasks", tasks, "--crontab", file) }()
	backfilled := `select count(*) from S._private_jobs j join S._private_tasks t on t.id = j.task_id
		where t.identifier = 'cli_cron' and (j.payload->'_cron'->>'backfilled')::boolean and j.payload->>'from' = 'cli'`
	testkit.EventuallyWithin(t, time.Minute, "ten back-filled cron jobs", func() bool { return b.count(t, backfilled) >= 10 })
	cancel()
	var r result
	select {
	case r = <-done:
	case <-time.After(time.Minute):
		t.Fatal("run did not return within a minute of cancellation")
	}
	if r.code != 0 {
		t.Fatalf("run: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if n := b.count(t, backfilled); n != 10 {
		t.Errorf("%d back-filled jobs, want 10 (the 10 minutes of fill)", n)
	}
	if !strings.Contains(r.stderr, "cron entries loaded") || !strings.Contains(r.stderr, "entries=1") {
		t.Errorf("run did not log the crontab it loaded:\n%s", r.stderr)
	}
}

func TestCronCheckJSONReportsErrorsAsJSON(t *testing.T) {
	t.Parallel()
	file := writeCrontab(t, "* * * * * ok\n61 * * * * bad_minute\n* * * * *\n")
	r := runCLI(context.Background(), nil, "cron", "check", "--json", file)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1", r.code)
	}
	var got struct {
		File   string
		Errors []struct {
			Line, Column int
			Message      string
		}
		Truncated bool
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, r.stdout)
	}
	if got.File != file || len(got.Errors) != 2 || got.Errors[0].Line != 2 || got.Errors[0].Column != 1 ||
		!strings.Contains(got.Errors[0].Message, "minute") || got.Errors[1].Line != 3 || got.Truncated {
		t.Fatalf("errors = %+v", got)
	}
	if !strings.Contains(r.stderr, "line 2, column 1") {
		t.Fatalf("stderr %q lacks the human-readable errors", r.stderr)
	}
}
