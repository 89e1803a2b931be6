package core_test

import (
	"testing"
	"time"

	"github.com/gworker/gworker/core"
)

func TestCountAvailableJobsCountsWhatCouldRunNow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.add(t, "a", nil, nil)
	b.add(t, "b", nil, &core.JobSpec{QueueName: "q"})
	b.add(t, "later", nil, &core.JobSpec{RunAt: time.Now().Add(time.Hour)})
	locked := b.add(t, "locked", nil, nil)
	b.exec(t, "update S._private_jobs set locked_by = 'w', locked_at = now() where id = $1", locked.ID)
	failed := b.add(t, "failed", nil, &core.JobSpec{MaxAttempts: 1})
	b.exec(t, "update S._private_jobs set attempts = 1 where id = $1", failed.ID)
	n, err := b.utils.CountAvailableJobs(b.ctx)
	if err != nil || n != 2 {
		t.Fatalf("CountAvailableJobs = %d, %v; want 2 (not the future, locked or permanently failed ones)", n, err)
	}
}
