package core_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gworker/gworker/core"
)

// ridingDB counts the completions each kind of statement records: riding
// a fetch, or in a statement of their own. It holds the first statement
// that records completions alone until a fetch carried some, so that
// completions pile up while a fetch is due: a fetch finds them whatever
// the machine's pace. With failRide set, the first fetch that carries
// completions fails before it reaches the server.
type ridingDB struct {
	core.Database
	failRide atomic.Bool
	held     atomic.Bool   // the first complete statement was held
	rode1    chan struct{} // closed when a fetch first carried completions
	rideOnce sync.Once

	mu           sync.Mutex
	rides, rode  int // fetches that carried completions, and how many
	alone        int // completions recorded by the complete statement
	failedRides  int
	failedRideID []int64
}

func (d *ridingDB) Query(ctx context.Context, sql string, args ...any) (core.Rows, error) {
	if isFetch(sql) && strings.HasPrefix(sql, "with done as") {
		ids := args[len(args)-2].([]int64)
		d.rideOnce.Do(func() { close(d.rode1) })
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.failRide.CompareAndSwap(true, false) {
			d.failedRides++
			d.failedRideID = ids
			return nil, errors.New("injected: connection refused")
		}
		d.rides++
		d.rode += len(ids)
	}
	return d.Database.Query(ctx, sql, args...)
}

func (d *ridingDB) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	if strings.HasPrefix(sql, "with done as") {
		if d.held.CompareAndSwap(false, true) {
			select {
			case <-d.rode1:
			case <-time.After(30 * time.Second):
				return 0, errors.New("test: no fetch carried completions within 30s of the first completion")
			}
		}
		d.mu.Lock()
		d.alone += len(args[0].([]int64))
		d.mu.Unlock()
	}
	return d.Database.Exec(ctx, sql, args...)
}

// drainWithRides runs n no-op jobs through a worker with a local queue on
// db, and checks that each ran once and is gone. The local queue fetches
// ahead whether or not completions are recorded, so a fetch comes while
// ridingDB holds the first completions.
func drainWithRides(t *testing.T, b *bundle, db *ridingDB, n int) {
	t.Helper()
	db.rode1 = make(chan struct{})
	ran := &counter{}
	w, sink := b.worker(t, core.WorkerOptions{Database: db, Concurrency: 4, LocalQueue: core.LocalQueueOptions{Size: 8},
		PollInterval: time.Hour,
		Tasks:        []core.Task{core.RawTask("r", func(_ context.Context, j *core.Job) error { ran.record(j.ID); return nil })}})
	jobs := make([]core.NewJob, n)
	for i := range jobs {
		jobs[i] = core.NewJob{Identifier: "r"}
	}
	if _, err := b.utils.AddJobs(b.ctx, jobs); err != nil {
		t.Fatal(err)
	}
	stop := runInBackground(t, w)
	eventually(t, "every job to run and be recorded", func() bool { return len(b.jobs(t)) == 0 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	counts := map[int64]int{}
	for _, id := range ran.list() {
		counts[id]++
	}
	for id, c := range counts {
		if c != 1 {
			t.Errorf("job %d ran %d times", id, c)
		}
	}
	if len(counts) != n {
		t.Fatalf("%d jobs ran, want %d\n%s", len(counts), n, strings.Join(sinkRecs(sink), "\n"))
	}
}

// A worker records the completions that wait when it fetches in the
// fetch's own statement; each completion is recorded exactly once, by a
// fetch or by a statement of its own.
func TestCompletionsRideTheNextFetch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	db := &ridingDB{Database: b.db}
	drainWithRides(t, b, db, 400)
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.rides == 0 {
		t.Fatal("no fetch carried completions while the worker had a backlog")
	}
	if db.rode+db.alone != 400 {
		t.Fatalf("%d completions rode %d fetches and %d went alone: %d recorded, want each of 400 once",
			db.rode, db.rides, db.alone, db.rode+db.alone)
	}
	t.Logf("%d completions rode %d fetches; %d went alone", db.rode, db.rides, db.alone)
}

// When a fetch that carries completions fails, they are not lost: the
// completer records them on its own.
func TestCompletionsOfAFailedRideAreRecordedAlone(t *testing.T) {
	t.Parallel()
	b := setup(t)
	db := &ridingDB{Database: b.db}
	db.failRide.Store(true)
	drainWithRides(t, b, db, 400)
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.failedRides != 1 || len(db.failedRideID) == 0 {
		t.Fatalf("%d rides failed, carrying %d completions; want one with some", db.failedRides, len(db.failedRideID))
	}
	if db.rode+db.alone != 400 {
		t.Fatalf("%d completions rode and %d went alone: %d recorded, want 400", db.rode, db.alone, db.rode+db.alone)
	}
}
