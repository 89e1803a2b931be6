package main

import (
	"strings"
	"testing"
	"time"

	"github.com/gworker/gworker/core"
)

func TestOnlyTheGivenFlagsChangeTheOptions(t *testing.T) {
	t.Parallel()
	o, err := parse([]string{"-c", "postgres://x", "-ids", "f"})
	if err != nil {
		t.Fatal(err)
	}
	// Sentinels stand for core's defaults: without tuning flags nothing
	// may touch them.
	sentinel := core.WorkerOptions{Concurrency: -7, LocalQueue: core.LocalQueueOptions{Size: -8, RefetchDelay: core.RefetchDelayOptions{Duration: -9}},
		CompleteJobBatchDelay: -10, FailJobBatchDelay: -11}
	wo := sentinel
	o.apply(&wo)
	if wo.Concurrency != sentinel.Concurrency || wo.LocalQueue != sentinel.LocalQueue ||
		wo.CompleteJobBatchDelay != sentinel.CompleteJobBatchDelay || wo.FailJobBatchDelay != sentinel.FailJobBatchDelay {
		t.Errorf("no tuning flag changed the options: %+v", wo)
	}
	o, err = parse([]string{"-c", "u", "-ids", "f", "-j", "24", "--local-queue", "500", "--refetch-delay", "10ms", "--batch-delay", "0s"})
	if err != nil {
		t.Fatal(err)
	}
	wo = sentinel
	o.apply(&wo)
	if wo.Concurrency != 24 || wo.LocalQueue.Size != 500 || wo.LocalQueue.RefetchDelay.Duration != 10*time.Millisecond ||
		wo.CompleteJobBatchDelay != 0 || wo.FailJobBatchDelay != 0 {
		t.Errorf("tuned options: %+v", wo)
	}
	for _, bad := range [][]string{{"-c", "u"}, {"-c", "u", "-ids", "f", "extra"}, {"-c", "u", "-ids", "f", "-j", "x"}} {
		if _, err := parse(bad); err == nil {
			t.Errorf("parse(%q) accepted it", bad)
		}
	}
}

func TestRanIDsWritesOneIDALine(t *testing.T) {
	t.Parallel()
	var r ranIDs
	for _, id := range []int64{3, 1, 3} {
		r.add(id)
	}
	var b strings.Builder
	if err := r.write(&b); err != nil {
		t.Fatal(err)
	}
	if b.String() != "3\n1\n3\n" || r.len() != 3 {
		t.Errorf("wrote %q, len %d", b.String(), r.len())
	}
}
