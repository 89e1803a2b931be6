package core

import (
	"slices"
	"testing"
	"time"
)

func queueIDs(q localQueue) []int64 {
	var ids []int64
	for _, b := range q {
		ids = append(ids, b.job.ID)
	}
	return ids
}

func TestLocalQueuePopsInFetchOrderAndRemovesByID(t *testing.T) {
	var q localQueue
	now := time.Now()
	q.push([]*Job{{ID: 1}, {ID: 2}}, now)
	q.push([]*Job{{ID: 3}}, now.Add(time.Second))
	if j := q.remove(2); j == nil || j.ID != 2 {
		t.Fatalf("remove(2) = %v", j)
	}
	if j := q.remove(2); j != nil {
		t.Fatalf("remove of a job no longer waiting = %v, want nil", j)
	}
	var popped []int64
	for j := q.pop(); j != nil; j = q.pop() {
		popped = append(popped, j.ID)
	}
	if !slices.Equal(popped, []int64{1, 3}) || len(q) != 0 {
		t.Fatalf("popped %v, left %v; want [1 3], none", popped, queueIDs(q))
	}
}

func TestLocalQueueExpiresJobsThatWaitedTheTTL(t *testing.T) {
	var q localQueue
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	q.push([]*Job{{ID: 1}, {ID: 2}}, t0)
	q.push([]*Job{{ID: 3}}, t0.Add(20*time.Second))
	expired, next := q.expire(t0.Add(30*time.Second), 30*time.Second)
	if len(expired) != 2 || expired[0].ID != 1 || expired[1].ID != 2 {
		t.Fatalf("expired %v, want jobs 1 and 2", expired)
	}
	if !slices.Equal(queueIDs(q), []int64{3}) || next != 20*time.Second {
		t.Fatalf("left %v, next TTL in %v; want [3] in 20s", queueIDs(q), next)
	}
	if expired, next = q.expire(t0.Add(50*time.Second), 30*time.Second); len(expired) != 1 || next != 0 || len(q) != 0 {
		t.Fatalf("second expiry: %v, next %v, left %v; want job 3, 0, none", expired, next, queueIDs(q))
	}
}

func TestLocalQueueIDsAreTheWaitingJobs(t *testing.T) {
	q := localQueue{{job: &Job{ID: 7}}, {job: &Job{ID: 9}}}
	known := map[int64]bool{1: true}
	q.ids(known)
	if len(known) != 3 || !known[7] || !known[9] {
		t.Fatalf("known = %v", known)
	}
}
