package testkit

import (
	"bytes"
	"encoding/json"
	"testing"
)

// JobJSONKeys are the keys, in order, of a job as JSON (core.Job's
// MarshalJSON): what gworker jobs/job/add --json and the admin API print.
// The tests of each of them compare against this one list, so that the
// two cannot drift apart again.
var JobJSONKeys = []string{"id", "queue_name", "task_identifier", "payload", "priority", "run_at", "attempts",
	"max_attempts", "last_error", "created_at", "updated_at", "key", "locked_at", "locked_by", "revision", "flags", "state"}

// SweepJSONKeys are the keys, in order, of a sweep's result as JSON
// (core.SweepResult's MarshalJSON): what gworker sweep --json and the
// admin API's sweep print.
var SweepJSONKeys = []string{"dry_run", "worker_ids", "removed_worker_ids", "foreign_worker_ids", "job_ids", "jobs",
	"skipped_job_ids", "queues"}

// JSONKeys returns the keys of the JSON object b, in the order they
// appear, and fails the test when b is not one JSON object.
func JSONKeys(t testing.TB, b []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object (%v): %s", err, b)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("reading the keys of %s: %v", b, err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatalf("reading the value of %q in %s: %v", tok, b, err)
		}
	}
	if _, err := dec.Token(); err != nil {
		t.Fatalf("reading the end of %s: %v", b, err)
	}
	if dec.More() {
		t.Fatalf("more than one JSON value: %s", b)
	}
	return keys
}
