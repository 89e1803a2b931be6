package testkit

import (
	"context"

	"github.com/gworker/gworker/core"
)

// Names of the signals that Listening records.
const (
	// Listened: a Listen call returned a session, so notifications sent
	// from now on reach the worker.
	Listened = "testkit:listened"
	// Relistened: a session reported that it reconnected with every LISTEN
	// in place again.
	Relistened = "testkit:relistened"
)

// OnEvent records e by its name; it fits core.Hooks.OnEvent.
func (e *Events) OnEvent(_ context.Context, ev core.Event) { e.Record(ev.EventName()) }

// Listening returns db, recording in events each time a session it opens
// starts listening (Listened) or reconnects (Relistened): the moments after
// which a notification reaches the worker. Tests wait for them instead of
// for the worker's log lines.
func Listening(db core.Database, events *Events) core.Database {
	return &listening{Database: db, events: events}
}

type listening struct {
	core.Database
	events *Events
}

func (l *listening) Listen(ctx context.Context, channels ...string) (core.Notifications, error) {
	n, err := l.Database.Listen(ctx, channels...)
	if err != nil {
		return nil, err
	}
	l.events.Record(Listened)
	return &listeningSession{Notifications: n, events: l.events}, nil
}

type listeningSession struct {
	core.Notifications
	events *Events
}

func (s *listeningSession) Receive(ctx context.Context) (core.Notification, error) {
	msg, err := s.Notifications.Receive(ctx)
	if err == nil && msg.Reconnected {
		s.events.Record(Relistened)
	}
	return msg, err
}
