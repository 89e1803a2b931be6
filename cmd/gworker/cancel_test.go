package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCancelMarksJobPermanentlyFailed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.migrate(t)
	add := b.cli(t, "add", "x", "--key", "k1")
	if add.code != 0 {
		t.Fatalf("add: %s", add.stderr)
	}
	var job struct{ ID int64 }
	if err := json.Unmarshal([]byte(add.stdout), &job); err != nil {
		t.Fatal(err)
	}
	r := b.cli(t, "cancel", "--reason", "typo in payload", strings.TrimSpace(jsonNumber(job.ID)))
	if r.code != 0 {
		t.Fatalf("cancel: exit %d: %s", r.code, r.stderr)
	}
	var out struct {
		ID        int64  `json:"id"`
		LastError string `json:"last_error"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.ID != job.ID || out.LastError != "Cancelled: typo in payload" {
		t.Fatalf("stdout %q (%v)", r.stdout, err)
	}
	if n := b.count(t, "select count(*) from S._private_jobs where id = $1 and attempts = max_attempts and last_error = 'Cancelled: typo in payload'", job.ID); n != 1 {
		t.Fatal("job not marked permanently failed")
	}
	if r := b.cli(t, "cancel", "--key", "k1"); r.code != 0 {
		t.Fatalf("cancel by key: %s", r.stderr)
	}
	for _, args := range [][]string{{"cancel"}, {"cancel", "abc"}, {"cancel", "999999"}} {
		if r := b.cli(t, args...); r.code == 0 || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 && !strings.Contains(r.stderr, "usage") {
			t.Fatalf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
}

func jsonNumber(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
