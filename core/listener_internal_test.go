package core

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"
)

func TestInsertCountReadsTheCountOfAJobsInsertPayload(t *testing.T) {
	for payload, want := range map[string]int{
		"":                        1,
		`{"r":0.5,"count":3}`:     3,
		`{"r":0.5}`:               1,
		"not json":                1,
		`{"count":1e9}`:           1 << 20,
		`{"count":"many"}`:        1,
		`{"r":0.1,"count":0}`:     0,
		`{"count":2.0,"other":1}`: 2,
	} {
		if got := insertCount(payload); got != want {
			t.Errorf("insertCount(%q) = %d, want %d", payload, got, want)
		}
	}
}

// notifications delivers the messages it was given, then blocks until the
// context ends.
type notifications struct{ msgs chan Notification }

func (n notifications) Receive(ctx context.Context) (Notification, error) {
	select {
	case m := <-n.msgs:
		return m, nil
	case <-ctx.Done():
		return Notification{}, ctx.Err()
	}
}
func (notifications) Close(context.Context) error { return nil }

type listenDB struct {
	Database
	n notifications
}

func (d listenDB) Listen(context.Context, ...string) (Notifications, error) { return d.n, nil }

// Query answers the listener's look for jobs cancelled while it did not
// listen: there are none.
func (listenDB) Query(context.Context, string, ...any) (Rows, error) { return noRows{}, nil }

type noRows struct{}

func (noRows) Next() bool        { return false }
func (noRows) Scan(...any) error { return nil }
func (noRows) Err() error        { return nil }
func (noRows) Close() error      { return nil }

func TestListenerWakesCancelsForThisWorkerOnlyAndStops(t *testing.T) {
	n := notifications{msgs: make(chan Notification, 10)}
	w := &Worker{id: "pool-me", db: listenDB{n: n}, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		opts: WorkerOptions{Schema: "s", Concurrency: 4, Clock: systemClock{}}, sql: newWorkerSQL(newRenderer("s"), false)}
	wake, cancels, fatal := newWakeups(false), newCancellations(), make(chan error, 1)
	l := newListener(w, wake, cancels, fatal)
	if err := l.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	n.msgs <- Notification{Channel: "jobs:insert", Payload: `{"count":2}`}
	n.msgs <- Notification{Channel: cancelChannel, Payload: `{"schema":"s","id":1,"worker":"pool-other","reason":"no"}`}
	n.msgs <- Notification{Channel: cancelChannel, Payload: `{"schema":"other","id":2,"worker":"pool-me","reason":"no"}`}
	n.msgs <- Notification{Channel: cancelChannel, Payload: `{"schema":"s","id":3,"worker":"pool-me","reason":"yes"}`}
	select {
	case <-cancels.sig:
	case <-time.After(10 * time.Second):
		t.Fatal("the cancellation for this worker never arrived")
	}
	l.Stop()
	if reqs := cancels.take(); len(reqs) != 1 || reqs[0].ID != 3 || reqs[0].Reason != "yes" {
		t.Fatalf("cancellations %+v, want only job 3's", reqs)
	}
	// 4 for listening (jobs may have been added meanwhile), 2 announced.
	if got := wake.take(); got != 6 {
		t.Fatalf("woken for %d jobs, want 6", got)
	}
}
