package conformance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gworker/gworker/core"
)

func (s *suite) listenContract(t *testing.T) {
	if s.h.NoListen {
		t.Run("ListenUnsupported", s.testListenUnsupported)
		return
	}
	t.Run("ListenDelivers", s.testListenDelivers)
	t.Run("ListenSubscribedOnReturn", s.testListenSubscribed)
	t.Run("ReceiveHonoursContext", s.testReceiveContext)
	t.Run("CloseUnblocksReceive", s.testClose)
	t.Run("ListenReconnects", s.testReconnect)
	t.Run("ListenConcurrentUse", s.testListenConcurrency)
}

func (s *suite) testListenUnsupported(t *testing.T) {
	t.Parallel()
	e := s.setup(t)
	n, err := e.db.Listen(e.ctx, "gwconf:"+e.token)
	if err == nil {
		n.Close(e.ctx)
		itemListenUnsupported.fatalf(t, "the harness says NoListen, but Listen succeeded: clear Harness.NoListen to run the notification tests")
	}
	if !errors.Is(err, core.ErrNotificationsUnsupported) {
		itemListenUnsupported.errorf(t, "Listen failed with %v, which does not wrap core.ErrNotificationsUnsupported; the worker would retry it forever instead of polling", err)
	}
}

// listen opens a session on channels and closes it when the test ends. A
// driver that says it cannot listen gets a hint about the harness.
func (e *env) listen(channels ...string) core.Notifications {
	e.t.Helper()
	n, err := e.db.Listen(e.ctx, channels...)
	if errors.Is(err, core.ErrNotificationsUnsupported) {
		itemListenUnsupported.fatalf(e.t, "Listen returned %v: if the driver cannot LISTEN, set Harness.NoListen", err)
	}
	if err != nil {
		itemListen.fatalf(e.t, "Listen(%q): %v", channels, err)
	}
	e.t.Cleanup(func() {
		watchOf(e.t).cleanup("Notifications.Close in the test's cleanup")
		ctx, cancel := context.WithTimeout(context.Background(), promptly)
		defer cancel()
		n.Close(ctx)
	})
	return n
}

func notify(t testing.TB, ctx context.Context, db core.Executor, channel, payload string) {
	t.Helper()
	if _, err := db.Exec(ctx, `select pg_notify($1, $2)`, channel, payload); err != nil {
		itemListen.fatalf(t, "pg_notify(%q, ...) through another Database: %v", channel, err)
	}
}

// receive waits for the next notification, failing under it after
// the suite's wait (Harness.Timeout).
func receive(t testing.TB, ctx context.Context, it item, n core.Notifications, what string) core.Notification {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, lim(t).wait)
	defer cancel()
	msg, err := n.Receive(ctx)
	if err != nil {
		it.fatalf(t, "Receive, waiting for %s: %v", what, err)
	}
	return msg
}

func describe(n core.Notification) string {
	if n.Reconnected {
		return "{Reconnected}"
	}
	p := n.Payload
	if len(p) > 40 {
		p = fmt.Sprintf("%.30s... (%d bytes)", p, len(p))
	}
	return fmt.Sprintf("{Channel: %q, Payload: %q}", n.Channel, p)
}

func (s *suite) testListenDelivers(t *testing.T) {
	t.Parallel()
	e := s.setup(t)
	a := "gwconf:" + e.token + ":a"
	// A name that must be quoted as an identifier.
	b := "Gw Conf-" + e.token + ":B"
	n := e.listen(a, b)
	sender := e.other()
	want := []core.Notification{
		{Channel: a, Payload: "1"},
		{Channel: b, Payload: `{"r": 1, "count": 2}`},
		{Channel: a, Payload: ""},
		{Channel: b, Payload: `it's "ünï" \ {} $1 ?`},
		{Channel: a, Payload: strings.Repeat("x", 7000)},
	}
	for i, w := range want {
		if i == len(want)-1 {
			notify(t, e.ctx, sender, "gwconf:"+e.token+":not-listened", "must not arrive")
		}
		notify(t, e.ctx, sender, w.Channel, w.Payload)
	}
	for i, w := range want {
		got := receive(t, e.ctx, itemListen, n, fmt.Sprintf("notification %d of %d, %s", i+1, len(want), describe(w)))
		if got != w {
			itemListen.fatalf(t, "notification %d of %d: got %s, want %s", i+1, len(want), describe(got), describe(w))
		}
	}
	// Notifications sent from inside a transaction arrive at commit.
	tx, err := sender.Begin(e.ctx)
	if err != nil {
		itemTx.fatalf(t, "Begin: %v", err)
	}
	notify(t, e.ctx, tx, a, "in tx")
	if err := tx.Commit(e.ctx); err != nil {
		itemTx.fatalf(t, "Commit: %v", err)
	}
	if got := receive(t, e.ctx, itemListen, n, "a notification sent in a committed transaction"); got != (core.Notification{Channel: a, Payload: "in tx"}) {
		itemListen.errorf(t, "after a committed transaction: got %s, want the notification it sent", describe(got))
	}
}

// A worker that adds a job right after its own Listen returned must be
// woken by it: Listen may not return before the server has run LISTEN.
// Several rounds, since a background LISTEN sometimes wins the race.
func (s *suite) testListenSubscribed(t *testing.T) {
	t.Parallel()
	e := s.setup(t)
	sender := e.other()
	notify(t, e.ctx, sender, "gwconf:"+e.token+":warm-up", "") // connect the sender first
	for i := range 5 {
		ch := fmt.Sprintf("gwconf:%s:%d", e.token, i)
		n := e.listen(ch)
		notify(t, e.ctx, sender, ch, "right after Listen")
		ctx, cancel := context.WithTimeout(e.ctx, lim(t).wait)
		got, err := n.Receive(ctx)
		cancel()
		if err != nil || got != (core.Notification{Channel: ch, Payload: "right after Listen"}) {
			itemListenSubscribed.fatalf(t, "round %d of 5: a notification sent on %q right after Listen returned: Receive gave %s, %v "+
				"(the session was not listening yet when Listen returned)", i+1, ch, describe(got), err)
		}
		within(t, itemClose, promptly, "Close", func() { _ = n.Close(e.ctx) })
	}
}

func (s *suite) testReceiveContext(t *testing.T) {
	t.Parallel()
	e := s.setup(t)
	ch := "gwconf:" + e.token
	n := e.listen(ch)
	sender := e.other()

	// Nothing arrives: Receive returns ctx.Err() when ctx ends.
	for _, c := range []struct {
		what string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"a deadline", func() (context.Context, context.CancelFunc) { return context.WithTimeout(e.ctx, 50*time.Millisecond) }, context.DeadlineExceeded},
		{"cancellation", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(e.ctx)
			time.AfterFunc(50*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
	} {
		ctx, cancel := c.ctx()
		var err error
		var msg core.Notification
		within(t, itemReceiveCtx, promptly, "Receive ended by "+c.what, func() { msg, err = n.Receive(ctx) })
		cancel()
		if !errors.Is(err, c.want) {
			itemReceiveCtx.fatalf(t, "Receive ended by %s returned (%s, %v), want an error that errors.Is %v", c.what, describe(msg), err, c.want)
		}
	}
	// An already cancelled ctx.
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	if _, err := n.Receive(ctx); !errors.Is(err, context.Canceled) {
		itemReceiveCtx.errorf(t, "Receive with an already cancelled ctx returned %v, want context.Canceled", err)
	}

	// The session is still subscribed: what is sent now, while nobody
	// receives, arrives.
	notify(t, e.ctx, sender, ch, "after the interruptions")
	notify(t, e.ctx, sender, ch, "and another")
	for _, want := range []string{"after the interruptions", "and another"} {
		got := receive(t, e.ctx, itemReceiveCtx, n, "a notification sent after Receive was interrupted")
		if got.Reconnected {
			got = receive(t, e.ctx, itemReceiveCtx, n, "a notification sent after Receive was interrupted")
			t.Logf("conformance: the session reconnected after Receive was interrupted; allowed, but it costs a reconnect each time the worker's context ends")
		}
		if got.Payload != want || got.Channel != ch {
			itemReceiveCtx.fatalf(t, "after interrupted Receives: got %s, want payload %q: interrupting Receive must not lose notifications", describe(got), want)
		}
	}
}

func (s *suite) testClose(t *testing.T) {
	t.Parallel()
	e := s.setup(t)
	n := e.listen("gwconf:" + e.token)
	started := make(chan struct{})
	result := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(e.ctx, testTimeout)
		defer cancel()
		close(started)
		_, err := n.Receive(ctx)
		result <- err
	}()
	<-started
	// Let Receive block; whether it is already blocked or about to be,
	// Close must end it.
	time.Sleep(20 * time.Millisecond)
	within(t, itemClose, promptly, "Close while a Receive is blocked", func() { _ = n.Close(e.ctx) })
	select {
	case err := <-result:
		if !errors.Is(err, core.ErrNotificationsClosed) {
			itemClose.errorf(t, "the blocked Receive returned %v, want an error wrapping core.ErrNotificationsClosed", err)
		}
	case <-time.After(promptly):
		itemClose.fatalf(t, "a Receive blocked when Close was called had not returned %v later", promptly)
	}
	var err error
	within(t, itemClose, promptly, "Receive after Close", func() { _, err = n.Receive(e.ctx) })
	if !errors.Is(err, core.ErrNotificationsClosed) {
		itemClose.errorf(t, "Receive after Close returned %v, want an error wrapping core.ErrNotificationsClosed", err)
	}
	within(t, itemClose, promptly, "a second Close", func() { _ = n.Close(e.ctx) })
}

// listenerPIDs finds the backends a session listens on.
func (e *env) listenerPIDs(admin core.Database, n core.Notifications) []int32 {
	e.t.Helper()
	if e.s.h.ListenerPIDs != nil {
		pids, err := e.s.h.ListenerPIDs(e.ctx, untrackedNotifications(n))
		if err != nil {
			itemReconnect.fatalf(e.t, "Harness.ListenerPIDs: %v", err)
		}
		return pids
	}
	var pids []int32
	rows, err := admin.Query(e.ctx, `select pid from pg_stat_activity
		where pid <> pg_backend_pid() and ltrim(query) ilike 'listen%' and strpos(query, $1) > 0`, e.token)
	if err != nil {
		itemReconnect.fatalf(e.t, "read pg_stat_activity: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		var pid int32
		if err := rows.Scan(&pid); err != nil {
			itemReconnect.fatalf(e.t, "read pg_stat_activity: %v", err)
		}
		pids = append(pids, pid)
	}
	if err := rows.Err(); err != nil {
		itemReconnect.fatalf(e.t, "read pg_stat_activity: %v", err)
	}
	return pids
}

func (s *suite) testReconnect(t *testing.T) {
	t.Parallel()
	e := s.setup(t)
	a, b := "gwconf:"+e.token+":a", "gwconf:"+e.token+":b"
	n := e.listen(a, b)
	admin := e.other()

	var pids []int32
	eventually(t, itemReconnect, "the listening backend to show in pg_stat_activity (a backend whose last statement is LISTEN "+
		"with this test's channel; set Harness.ListenerPIDs if the driver's session runs other statements)", func() bool {
		pids = e.listenerPIDs(admin, n)
		return len(pids) > 0
	})
	var killed int64
	if err := queryRow(e.ctx, admin, `select count(*) filter (where pg_terminate_backend(pid::int4)) from unnest($1::int8[]) pid`,
		[]any{int32sTo64(pids)}, &killed); err != nil || killed == 0 {
		itemReconnect.fatalf(t, "pg_terminate_backend(%v): %d terminated, %v", pids, killed, err)
	}

	got := receive(t, e.ctx, itemReconnect, n, "Notification{Reconnected: true} after pg_terminate_backend of the listening backend")
	if !got.Reconnected {
		itemReconnect.fatalf(t, "the first Receive after the listening backend was terminated returned %s, want Reconnected "+
			"(nothing was sent meanwhile)", describe(got))
	}
	// Every channel is listened to again.
	sender := e.other()
	notify(t, e.ctx, sender, a, "after reconnect a")
	notify(t, e.ctx, sender, b, "after reconnect b")
	for _, want := range []core.Notification{{Channel: a, Payload: "after reconnect a"}, {Channel: b, Payload: "after reconnect b"}} {
		got := receive(t, e.ctx, itemReconnect, n, "a notification sent after the reconnect, "+describe(want))
		for got.Reconnected { // a second reconnect is allowed, not a lost message
			got = receive(t, e.ctx, itemReconnect, n, "a notification sent after the reconnect, "+describe(want))
		}
		if got != want {
			itemReconnect.fatalf(t, "after the reconnect: got %s, want %s (LISTEN must be re-run on every channel)", describe(got), describe(want))
		}
	}
	// And it can still be closed.
	within(t, itemClose, promptly, "Close after a reconnect", func() { _ = n.Close(e.ctx) })
}

func int32sTo64(in []int32) []int64 {
	out := make([]int64, len(in))
	for i, v := range in {
		out[i] = int64(v)
	}
	return out
}

// Notifications arrive while the sender's Database is busy with other
// statements, and several sessions of one Database work side by side.
func (s *suite) testListenConcurrency(t *testing.T) {
	t.Parallel()
	e := s.setup(t)
	const sessions, perSession = 3, 20
	var ns []core.Notifications
	var chans []string
	for i := range sessions {
		ch := fmt.Sprintf("gwconf:%s:%d", e.token, i)
		chans = append(chans, ch)
		ns = append(ns, e.listen(ch))
	}
	var wg sync.WaitGroup
	errs := make(chan error, sessions*2)
	for i := range sessions {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := range perSession {
				if _, err := e.db.Exec(e.ctx, `select pg_notify($1, $2)`, chans[i], fmt.Sprint(j)); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for j := range perSession {
				ctx, cancel := context.WithTimeout(e.ctx, lim(t).wait)
				msg, err := ns[i].Receive(ctx)
				cancel()
				if err != nil {
					errs <- fmt.Errorf("session %d, notification %d: %w", i, j, err)
					return
				}
				if msg.Channel != chans[i] || msg.Payload != fmt.Sprint(j) {
					errs <- fmt.Errorf("session %d, notification %d: got %s, want payload %d on %q", i, j, describe(msg), j, chans[i])
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		itemConcurrency.errorf(t, "%v", err)
	}
}
