package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gworker/gworker/internal/testkit"
)

// stateJobs are one job in each state, added by the CLI and moved there by
// SQL, as workers would.
type stateJobs struct {
	ready, scheduled, running, retrying, failed int64
}

func (b *bundle) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := b.pool.Exec(b.ctx, b.sql(sql), args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func (b *bundle) addStateJobs(t *testing.T) stateJobs {
	t.Helper()
	var s stateJobs
	s.ready = b.add(t, "send_email", `{"to": "ada@example.com", "n": 1}`, "--queue", "mail", "--key", "k-ready", "--flag", "vip").ID
	s.scheduled = b.add(t, "send_email", `{"to": "bob@example.com"}`, "--run-at", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)).ID
	s.running = b.add(t, "resize_image", `{}`, "--queue", "images").ID
	s.retrying = b.add(t, "send_email", `{"to": "cy@example.com"}`).ID
	s.failed = b.add(t, "resize_image", `{"big": true}`, "--max-attempts", "2").ID
	b.exec(t, "update S._private_jobs set locked_at = now(), locked_by = 'worker-1', attempts = 1 where id = $1", s.running)
	b.exec(t, "update S._private_jobs set attempts = 2, last_error = 'SMTP said: try later', run_at = now() + interval '1 minute' where id = $1", s.retrying)
	b.exec(t, "update S._private_jobs set attempts = 2, last_error = 'image too big'||chr(10)||'second line' where id = $1", s.failed)
	return s
}

// jobLines decodes jobs --json output: one object per line, each with
// exactly the keys of a job's JSON.
func jobLines(t *testing.T, stdout string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSuffix(stdout, "\n"), "\n") {
		if line == "" {
			continue
		}
		if keys := testkit.JSONKeys(t, []byte(line)); !slices.Equal(keys, testkit.JobJSONKeys) {
			t.Errorf("jobs --json printed the keys %q, want %q", keys, testkit.JobJSONKeys)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q is not a JSON object: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func ids(jobs []map[string]any) []int64 {
	var out []int64
	for _, j := range jobs {
		out = append(out, int64(j["id"].(float64)))
	}
	return out
}

func TestJobsListsEveryStateInAnEightyColumnTable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.migrate(t)
	s := b.addStateJobs(t)
	b.exec(t, "update S._private_jobs set last_error = repeat('a very long error ', 20) where id = $1", s.retrying)

	r := b.cli(t, "jobs")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "ID") {
		t.Fatalf("want a header and 5 rows:\n%s", r.stdout)
	}
	for _, l := range lines {
		if n := utf8.RuneCountInString(l); n > 80 {
			t.Errorf("line of %d columns: %q", n, l)
		}
	}
	// Newest first; each row's fields.
	want := [][]string{
		{strconv.FormatInt(s.failed, 10), "failed", "resize_image", "-", "2/2"},
		{strconv.FormatInt(s.retrying, 10), "retrying", "send_email", "-", "2/25", "in 59s", "a very long error"},
		{strconv.FormatInt(s.running, 10), "running", "resize_image", "images", "1/25"},
		{strconv.FormatInt(s.scheduled, 10), "scheduled", "send_email", "-", "0/25", "in 59m", "-"},
		{strconv.FormatInt(s.ready, 10), "ready", "send_email", "mail", "0/25"},
	}
	for i, w := range want {
		fields := strings.Fields(lines[i+1])
		for k, f := range w {
			if k < 5 && fields[k] != f {
				t.Errorf("row %d field %d = %q, want %q: %q", i, k, fields[k], f, lines[i+1])
			} else if k >= 5 && !strings.Contains(lines[i+1], f) {
				t.Errorf("row %d does not show %q: %q", i, f, lines[i+1])
			}
		}
	}
	if !strings.HasSuffix(lines[2], "…") {
		t.Errorf("the long error is not cut with an ellipsis: %q", lines[2])
	}
}

func TestJobsJSONHasOneObjectPerJobLine(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.migrate(t)
	s := b.addStateJobs(t)
	r := b.cli(t, "jobs", "--json", "--oldest-first")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	jobs := jobLines(t, r.stdout)
	if got, want := ids(jobs), []int64{s.ready, s.scheduled, s.running, s.retrying, s.failed}; !slices.Equal(got, want) {
		t.Fatalf("ids %v, want %v", got, want)
	}
	ready := jobs[0]
	for k, want := range map[string]any{
		"task_identifier": "send_email", "queue_name": "mail", "key": "k-ready", "state": "ready",
		"attempts": 0.0, "max_attempts": 25.0, "priority": 0.0, "last_error": nil, "locked_by": nil,
	} {
		if ready[k] != want {
			t.Errorf("ready job %s = %#v, want %#v", k, ready[k], want)
		}
	}
	if p, _ := ready["payload"].(map[string]any); p["to"] != "ada@example.com" || p["n"] != 1.0 {
		t.Errorf("payload = %#v", ready["payload"])
	}
	if f, _ := ready["flags"].([]any); len(f) != 1 || f[0] != "vip" {
		t.Errorf("flags = %#v", ready["flags"])
	}
	for i, state := range []string{"ready", "scheduled", "running", "retrying", "failed"} {
		if jobs[i]["state"] != state {
			t.Errorf("job %v state %v, want %s", jobs[i]["id"], jobs[i]["state"], state)
		}
	}
	if jobs[2]["locked_by"] != "worker-1" || jobs[4]["last_error"] != "image too big\nsecond line" {
		t.Errorf("running job locked_by %v, failed job last_error %q", jobs[2]["locked_by"], jobs[4]["last_error"])
	}
}

func TestJobsFilters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.migrate(t)
	s := b.addStateJobs(t)
	for _, tt := range []struct {
		args []string
		want []int64 // newest first
	}{
		{[]string{"--state", "failed"}, []int64{s.failed}},
		{[]string{"--state", "ready,scheduled"}, []int64{s.scheduled, s.ready}},
		{[]string{"--state", "running", "--state", "retrying"}, []int64{s.retrying, s.running}},
		{[]string{"--task", "resize_image"}, []int64{s.failed, s.running}},
		{[]string{"--task", "send_email", "--state", "ready"}, []int64{s.ready}},
		{[]string{"--queue", "mail", "--queue", "images"}, []int64{s.running, s.ready}},
		{[]string{"--key", "k-ready"}, []int64{s.ready}},
		{[]string{"--worker", "worker-1"}, []int64{s.running}},
		{[]string{"--flag", "vip"}, []int64{s.ready}},
		{[]string{"--payload", `{"to": "bob@example.com"}`}, []int64{s.scheduled}},
		{[]string{"--error", "TOO BIG"}, []int64{s.failed}},
		{[]string{"--task", "nothing"}, nil},
	} {
		r := b.cli(t, append([]string{"jobs", "--json"}, tt.args...)...)
		if r.code != 0 {
			t.Errorf("%v: exit %d, stderr %q", tt.args, r.code, r.stderr)
			continue
		}
		if got := ids(jobLines(t, r.stdout)); !slices.Equal(got, tt.want) {
			t.Errorf("%v: ids %v, want %v", tt.args, got, tt.want)
		}
	}
	r := b.cli(t, "jobs", "--task", "nothing")
	if r.code != 0 || r.stdout != "no job matches\n" {
		t.Errorf("empty table: exit %d, stdout %q", r.code, r.stdout)
	}
	for _, tt := range []struct{ args, want []string }{
		{[]string{"--state", "faild"}, []string{"--state", `"faild" is not a state`, "did you mean failed?"}},
		{[]string{"--payload", "{nope"}, []string{"--payload", "not JSON"}},
		{[]string{"--limit", "5000"}, []string{"--limit", "1000"}},
		{[]string{"--after", "x"}, []string{"--after"}},
		{[]string{"--watch", "--json"}, []string{"--watch", "--json"}},
	} {
		r := b.cli(t, append([]string{"jobs"}, tt.args...)...)
		assertOneLineError(t, r, tt.want...)
		if r.code != exitUsage {
			t.Errorf("%v: exit %d, want %d", tt.args, r.code, exitUsage)
		}
	}
}

func TestJobsPagesWithCursors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.migrate(t)
	var all []int64
	for range 5 {
		all = append([]int64{b.add(t, "t").ID}, all...) // newest first
	}
	r := b.cli(t, "jobs", "--json", "--limit", "2")
	if got := ids(jobLines(t, r.stdout)); !slices.Equal(got, all[:2]) {
		t.Fatalf("first page %v, want %v", got, all[:2])
	}
	next := cursorHint(t, r.stderr, "--after")
	r = b.cli(t, "jobs", "--json", "--limit", "2", "--after", next)
	if got := ids(jobLines(t, r.stdout)); !slices.Equal(got, all[2:4]) {
		t.Fatalf("second page %v, want %v", got, all[2:4])
	}
	prev := cursorHint(t, r.stderr, "--before")
	r = b.cli(t, "jobs", "--json", "--limit", "2", "--before", prev)
	if got := ids(jobLines(t, r.stdout)); !slices.Equal(got, all[:2]) {
		t.Fatalf("back to the first page: %v, want %v", got, all[:2])
	}
}

// cursorHint returns the cursor following flag in jobs' page hint.
func cursorHint(t *testing.T, stderr, flag string) string {
	t.Helper()
	_, rest, ok := strings.Cut(stderr, flag+" ")
	if !ok {
		t.Fatalf("no %s hint in %q", flag, stderr)
	}
	return strings.FieldsFunc(rest, func(r rune) bool { return r == ' ' || r == ';' })[0]
}

func TestJobsWatchRefreshesUntilInterrupted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.migrate(t)
	b.add(t, "t")
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	env := b.env()
	go func() {
		done <- run(ctx, []string{"jobs", "--watch", "--interval", "100ms"}, &stdout, &stderr, func(k string) string { return env[k] })
	}()
	testkit.EventuallyWithin(t, time.Minute, "two refreshes", func() bool { return strings.Count(stdout.String(), "\x1b[2J") >= 2 })
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d after interruption; stderr %q", code, stderr.String())
	}
}

func TestJobShowsTheWholeRow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.migrate(t)
	s := b.addStateJobs(t)
	r := b.cli(t, "job", strconv.FormatInt(s.retrying, 10))
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(r.stdout, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, " ") {
			fields[k] = strings.TrimSpace(v)
		}
	}
	for k, want := range map[string]string{
		"id": strconv.FormatInt(s.retrying, 10), "task": "send_email", "state": "retrying", "queue": "-",
		"attempts": "2 of 25", "priority": "0", "locked by": "-", "flags": "-",
	} {
		if fields[k] != want {
			t.Errorf("%s: %q, want %q\n%s", k, fields[k], want, r.stdout)
		}
	}
	if !strings.Contains(fields["next attempt"], "(in 59s)") {
		t.Errorf("next attempt %q, want the time a minute from now", fields["next attempt"])
	}
	if !strings.Contains(r.stdout, "payload:\n  {\n    \"to\": \"cy@example.com\"\n  }\n") {
		t.Errorf("payload not pretty-printed:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "last error:\n  SMTP said: try later\n") {
		t.Errorf("last error missing:\n%s", r.stdout)
	}

	r = b.cli(t, "job", strconv.FormatInt(s.failed, 10))
	if !strings.Contains(r.stdout, "next attempt:") || !strings.Contains(r.stdout, "none: no attempts left") ||
		!strings.Contains(r.stdout, "last error:\n  image too big\n  second line\n") {
		t.Errorf("failed job:\n%s", r.stdout)
	}
	r = b.cli(t, "job", "--json", strconv.FormatInt(s.running, 10))
	if keys := testkit.JSONKeys(t, []byte(r.stdout)); !slices.Equal(keys, testkit.JobJSONKeys) {
		t.Errorf("job --json printed the keys %q, want %q", keys, testkit.JobJSONKeys)
	}
	var j map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &j); err != nil || j["state"] != "running" || j["locked_by"] != "worker-1" {
		t.Errorf("job --json: %q (%v)", r.stdout, err)
	}
	r = b.cli(t, "job", "999999")
	assertOneLineError(t, r, "no job 999999")
}

// runWithInput runs gworker with input on stdin, as a terminal or not.
func (b *bundle) runWithInput(input string, interactive bool, args ...string) result {
	var stdout, stderr syncBuffer
	vars := b.env()
	e := &env{stdout: &stdout, stderr: &stderr, getenv: func(k string) string { return vars[k] },
		stdin: strings.NewReader(input), interactive: func() bool { return interactive }}
	code := e.main(b.ctx, args)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func TestFilterActionsCountThenAskUnlessYes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.migrate(t)
	s := b.addStateJobs(t)
	failedAttempts := func() int { return b.count(t, "select attempts from S._private_jobs where id = $1", s.failed) }

	r := b.runWithInput("", false, "retry", "--state", "failed")
	assertOneLineErrorAfter(t, r, "retry: 1 job matches", "refusing to retry 1 job", "--yes")
	r = b.runWithInput("n\n", true, "retry", "--state", "failed")
	if r.code == 0 || !strings.Contains(r.stderr, "retry them? [y/N]") {
		t.Errorf("answer no: exit %d, stderr %q", r.code, r.stderr)
	}
	r = b.cli(t, "retry", "--task", "resize_image", "--dry-run")
	if r.code != 0 || r.stdout != "retry: 2 jobs match (1 of them locked by a worker, left alone); nothing changed (--dry-run)\n" {
		t.Errorf("dry run: exit %d, stdout %q", r.code, r.stdout)
	}
	if n := failedAttempts(); n != 2 {
		t.Fatalf("the failed job changed before any confirmation: attempts %d", n)
	}

	r = b.runWithInput("y\n", true, "retry", "--state", "failed")
	if r.code != 0 || r.stdout != fmt.Sprintf("retried 1 job: %d\n", s.failed) {
		t.Errorf("answer yes: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if n := failedAttempts(); n != 0 {
		t.Errorf("retried job has attempts %d, want 0", n)
	}

	r = b.cli(t, "fail", "--task", "send_email", "--reason", "bad batch", "--yes", "--json")
	var res struct {
		DryRun                    bool
		Matched, Changed, Skipped int64
		IDs                       []int64
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.Matched != 3 || res.Changed != 3 || res.Skipped != 0 ||
		!slices.Equal(res.IDs, []int64{s.ready, s.scheduled, s.retrying}) || res.DryRun {
		t.Errorf("fail --json: %q (%v)", r.stdout, err)
	}
	if n := b.count(t, "select count(*) from S._private_jobs where last_error = 'bad batch' and attempts = max_attempts"); n != 3 {
		t.Errorf("%d jobs failed with the reason, want 3", n)
	}
}

// assertOneLineErrorAfter checks a refused action: the count, then one
// error line.
func assertOneLineErrorAfter(t *testing.T, r result, count string, want ...string) {
	t.Helper()
	first, rest, _ := strings.Cut(r.stderr, "\n")
	if !strings.Contains(first, count) {
		t.Errorf("first line %q does not say %q", first, count)
	}
	assertOneLineError(t, result{code: r.code, stdout: r.stdout, stderr: rest}, want...)
}

func TestActionsOnIDs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.migrate(t)
	s := b.addStateJobs(t)
	id := func(n int64) string { return strconv.FormatInt(n, 10) }

	r := b.cli(t, "reschedule", id(s.ready), id(s.scheduled), "--in", "2h", "--priority", "5", "--max-attempts", "3")
	if r.code != 0 || r.stdout != fmt.Sprintf("rescheduled 2 jobs: %d, %d\n", s.ready, s.scheduled) {
		t.Errorf("reschedule: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if n := b.count(t, "select count(*) from S._private_jobs where priority = 5 and max_attempts = 3 and run_at > now() + interval '119 minutes'"); n != 2 {
		t.Errorf("%d jobs rescheduled, want 2", n)
	}
	r = b.cli(t, "reschedule", id(s.ready))
	assertOneLineError(t, r, "--run-at", "--in")

	// Locked by a live worker: skipped.
	r = b.cli(t, "complete", id(s.running), id(s.scheduled))
	if r.code != 0 || r.stdout != fmt.Sprintf("completed 1 job, skipped 1 (locked by a worker): %d\n", s.scheduled) {
		t.Errorf("complete: exit %d, stdout %q", r.code, r.stdout)
	}
	r = b.cli(t, "remove", "--key", "k-ready")
	var removed struct{ ID int64 }
	if err := json.Unmarshal([]byte(r.stdout), &removed); err != nil || removed.ID != s.ready {
		t.Errorf("remove --key: %q (%v)", r.stdout, err)
	}
	r = b.cli(t, "cancel", "--worker", "worker-1", "--reason", "stuck", "--yes")
	if r.code != 0 || r.stdout != fmt.Sprintf("cancelled 1 job: %d\n", s.running) {
		t.Errorf("cancel by filter: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = b.cli(t, "remove", id(s.retrying), id(s.failed))
	if r.code != 0 || r.stdout != fmt.Sprintf("removed 2 jobs: %d, %d\n", s.retrying, s.failed) {
		t.Errorf("remove: exit %d, stdout %q", r.code, r.stdout)
	}
	for _, tt := range []struct{ args, want []string }{
		{[]string{"retry"}, []string{"job ids", "--all"}},
		{[]string{"retry", "x1"}, []string{`"x1"`}},
		{[]string{"fail", id(s.running)}, []string{"--reason"}},
		{[]string{"retry", "--all", "--task", "t"}, []string{"--all"}},
	} {
		r := b.cli(t, tt.args...)
		assertOneLineError(t, r, tt.want...)
	}
}

func TestStatsQueuesTasksAndCronList(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.migrate(t)
	b.addStateJobs(t)
	b.exec(t, "update S._private_job_queues set locked_at = now(), locked_by = 'worker-1' where queue_name = 'images'")
	b.exec(t, "insert into S._private_known_crontabs (identifier, known_since, last_execution) values ('nightly', now() - interval '2 days', '2030-01-02T03:04:00Z'), ('never_ran', now(), null)")

	r := b.cli(t, "stats", "--json")
	var st struct {
		Exact   bool
		Total   int64
		ByState map[string]int64            `json:"by_state"`
		ByTask  map[string]map[string]int64 `json:"by_task"`
		ByQueue map[string]map[string]int64 `json:"by_queue"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("stats --json: %q: %v", r.stdout, err)
	}
	if !st.Exact || st.Total != 5 {
		t.Errorf("exact %v total %d, want true 5", st.Exact, st.Total)
	}
	for _, state := range []string{"ready", "scheduled", "running", "retrying", "failed"} {
		if st.ByState[state] != 1 {
			t.Errorf("by_state[%s] = %d, want 1", state, st.ByState[state])
		}
	}
	if st.ByTask["send_email"]["retrying"] != 1 || st.ByTask["resize_image"]["failed"] != 1 || st.ByQueue["mail"]["ready"] != 1 || st.ByQueue["images"]["running"] != 1 {
		t.Errorf("by_task %v, by_queue %v", st.ByTask, st.ByQueue)
	}
	r = b.cli(t, "stats")
	if !strings.HasPrefix(r.stdout, "5 jobs (exact)\n") || !strings.Contains(r.stdout, "send_email") {
		t.Errorf("stats:\n%s", r.stdout)
	}
	for _, l := range strings.Split(r.stdout, "\n") {
		if f := strings.Fields(l); len(f) == 6 && f[0] == "all" && strings.Join(f[1:], " ") != "1 1 1 1 1" {
			t.Errorf("stats all row %q", l)
		}
	}

	r = b.cli(t, "queues", "--json")
	var qs []struct {
		Name     string
		Waiting  int64
		LockedBy *string `json:"locked_by"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &qs); err != nil || len(qs) != 2 || qs[0].Name != "images" || qs[0].LockedBy == nil ||
		*qs[0].LockedBy != "worker-1" || qs[1].Name != "mail" || qs[1].Waiting != 1 || qs[1].LockedBy != nil {
		t.Errorf("queues --json: %q (%v)", r.stdout, err)
	}
	r = b.cli(t, "queues")
	if lines := strings.Split(r.stdout, "\n"); len(lines) < 3 || !strings.HasPrefix(lines[1], "images") || !strings.Contains(lines[1], "worker-1") {
		t.Errorf("queues:\n%s", r.stdout)
	}

	r = b.cli(t, "tasks", "--json")
	var ts []struct {
		Identifier     string
		Waiting, Ready int64
		Workers        []string
	}
	if err := json.Unmarshal([]byte(r.stdout), &ts); err != nil || len(ts) != 2 || ts[1].Identifier != "send_email" ||
		ts[1].Waiting != 3 || ts[1].Ready != 1 || ts[1].Workers == nil || len(ts[1].Workers) != 0 {
		t.Errorf("tasks --json: %q (%v)", r.stdout, err)
	}
	r = b.cli(t, "tasks")
	if !strings.Contains(r.stdout, "nobody (its jobs wait)") {
		t.Errorf("tasks does not point out the task nobody runs:\n%s", r.stdout)
	}

	r = b.cli(t, "cron", "list", "--json")
	var cs []struct {
		Identifier    string
		LastExecution *time.Time `json:"last_execution"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &cs); err != nil || len(cs) != 2 || cs[0].Identifier != "never_ran" || cs[0].LastExecution != nil ||
		cs[1].Identifier != "nightly" || !cs[1].LastExecution.Equal(time.Date(2030, 1, 2, 3, 4, 0, 0, time.UTC)) {
		t.Errorf("cron list --json: %q (%v)", r.stdout, err)
	}
	r = b.cli(t, "cron", "list")
	if !strings.Contains(r.stdout, "nightly") || !strings.Contains(r.stdout, "2030-01-02T03:04:00Z") || !strings.Contains(r.stdout, "never") {
		t.Errorf("cron list:\n%s", r.stdout)
	}
}

func TestCleanupAndForceUnlock(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.migrate(t)
	s := b.addStateJobs(t)
	r := b.cli(t, "cleanup", "delete_permafailed_jobs,GC_TASK_IDENTIFIERS", "GC_JOB_QUEUES")
	if r.code != 0 || r.stdout != "cleanup done: DELETE_PERMAFAILED_JOBS, GC_TASK_IDENTIFIERS, GC_JOB_QUEUES (1 job permanently failed)\n" {
		t.Errorf("cleanup: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if n := b.count(t, "select count(*) from S._private_jobs where id = $1", s.failed); n != 0 {
		t.Error("the permanently failed job is still there")
	}
	r = b.cli(t, "cleanup", "GC_QUEUES")
	assertOneLineError(t, r, `"GC_QUEUES"`, "did you mean GC_JOB_QUEUES?")

	r = b.cli(t, "force-unlock", "worker-1")
	if r.code != 0 || r.stdout != "unlocked the jobs and queues of 1 worker (jobs released: worker-1: 1)\n" {
		t.Errorf("force-unlock: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if n := b.count(t, "select count(*) from S._private_jobs where locked_by is not null"); n != 0 {
		t.Errorf("%d jobs still locked", n)
	}
}

func TestRunWarnsAboutJobsNoWorkerRuns(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.migrate(t)
	tasks := t.TempDir()
	writeScript(t, tasks, "send_email.sh", "exit 0\n")
	b.add(t, "send_emial")
	b.add(t, "send_emial")
	b.add(t, "send_email")
	r := b.cli(t, "run", "--once", "--tasks", tasks)
	if r.code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	var warning string
	for _, l := range strings.Split(r.stderr, "\n") {
		if strings.Contains(l, "no live gworker worker has") {
			warning = l
		}
	}
	if !strings.Contains(warning, "level=WARN") || !strings.Contains(warning, `tasks="send_emial: 2"`) {
		t.Errorf("no warning naming send_emial:\n%s", r.stderr)
	}
}
