package core_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/internal/testkit"
)

func TestInspectJobJSONHasTheColumnsAndReadsBack(t *testing.T) {
	t.Parallel()
	at := time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.FixedZone("CET", 3600))
	lockedAt := at.Add(time.Minute)
	lastError := "boom <b>"
	full := core.Job{ID: 7, QueueName: "mail", TaskIdentifier: "send_email", Payload: json.RawMessage(`{"to": "ada@example.com"}`),
		Priority: -2, RunAt: at, Attempts: 1, MaxAttempts: 5, LastError: &lastError, CreatedAt: at, UpdatedAt: at.Add(time.Second),
		Key: "k", LockedAt: &lockedAt, LockedBy: "pool-1", Revision: 3, Flags: []string{"eu", "vip"}}
	b, err := json.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	if keys := testkit.JSONKeys(t, b); !slices.Equal(keys, testkit.JobJSONKeys) {
		t.Fatalf("keys %q, want %q", keys, testkit.JobJSONKeys)
	}
	const want = `{"id":7,"queue_name":"mail","task_identifier":"send_email","payload":{"to":"ada@example.com"},"priority":-2,` +
		`"run_at":"2030-01-02T02:04:05.123456Z","attempts":1,"max_attempts":5,"last_error":"boom \u003cb\u003e",` +
		`"created_at":"2030-01-02T02:04:05.123456Z","updated_at":"2030-01-02T02:04:06.123456Z","key":"k",` +
		`"locked_at":"2030-01-02T02:05:05.123456Z","locked_by":"pool-1","revision":3,"flags":["eu","vip"],"state":"running"}`
	if string(b) != want {
		t.Fatalf("encoded\n%s\nwant\n%s", b, want)
	}
	// A pointer encodes the same way.
	if pb, _ := json.Marshal(&full); string(pb) != want {
		t.Fatalf("*Job encoded\n%s", pb)
	}
	var back core.Job
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if again, _ := json.Marshal(back); string(again) != want {
		t.Fatalf("read back and encoded again:\n%s", again)
	}
	if back.ID != 7 || back.QueueName != "mail" || back.Key != "k" || back.LockedBy != "pool-1" || !back.RunAt.Equal(at) ||
		back.LockedAt == nil || !back.LockedAt.Equal(lockedAt) || *back.LastError != lastError || !slices.Equal(back.Flags, full.Flags) {
		t.Fatalf("read back %+v", back)
	}

	// NULL columns are null, no flags is [], and they read back as the
	// zero values GetJob gives.
	bare := core.Job{ID: 8, TaskIdentifier: "t", Payload: json.RawMessage(`{}`), RunAt: at, MaxAttempts: 25, CreatedAt: at, UpdatedAt: at}
	b, err = json.Marshal(bare)
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{`"queue_name":null`, `"last_error":null`, `"key":null`, `"locked_at":null`, `"locked_by":null`, `"flags":[]`,
		`"state":"scheduled"`} {
		if !strings.Contains(string(b), part) {
			t.Errorf("bare job %s has no %s", b, part)
		}
	}
	back = core.Job{Flags: []string{"left over"}}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	bare.RunAt, bare.CreatedAt, bare.UpdatedAt = back.RunAt, back.CreatedAt, back.UpdatedAt
	if !reflect.DeepEqual(back, bare) || !back.RunAt.Equal(at) {
		t.Fatalf("bare job read back as %+v, want %+v", back, bare)
	}
}

func TestSweepResultJSONHasEveryListAndReadsBack(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(core.SweepResult{})
	if err != nil {
		t.Fatal(err)
	}
	const empty = `{"dry_run":false,"worker_ids":[],"removed_worker_ids":[],"foreign_worker_ids":[],"job_ids":[],"jobs":0,"skipped_job_ids":[],"queues":0}`
	if string(b) != empty {
		t.Fatalf("empty result encoded\n%s\nwant\n%s", b, empty)
	}
	full := core.SweepResult{DryRun: true, WorkerIDs: []string{"pool-a", "pool-b"}, RemovedWorkerIDs: []string{"pool-a"},
		ForeignWorkerIDs: []string{"node-1"}, JobIDs: []int64{1, 2, 3}, Jobs: 3, SkippedJobIDs: []int64{4}, Queues: 1}
	b, err = json.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	if keys := testkit.JSONKeys(t, b); !slices.Equal(keys, testkit.SweepJSONKeys) {
		t.Fatalf("keys %q, want %q", keys, testkit.SweepJSONKeys)
	}
	var back core.SweepResult
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, full) {
		t.Fatalf("read back %+v, want %+v (from %s)", back, full, b)
	}
	if err := json.Unmarshal([]byte(empty), &back); err != nil || !reflect.DeepEqual(back, core.SweepResult{}) {
		t.Fatalf("empty result read back as %+v (%v)", back, err)
	}
}
