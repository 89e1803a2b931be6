package core

import (
	"context"
	"errors"
	"slices"
	"testing"
)

type recordingService struct {
	name string
	log  *[]string
	err  error
	routine
}

func (s *recordingService) Start(ctx context.Context) error {
	*s.log = append(*s.log, "start "+s.name)
	if s.err != nil {
		return s.err
	}
	s.start(ctx, func(ctx context.Context) { <-ctx.Done() })
	return nil
}

func (s *recordingService) Stop() {
	s.stop()
	*s.log = append(*s.log, "stop "+s.name)
}

func TestServicesStartInOrderAndStopInReverseWaiting(t *testing.T) {
	var log []string
	ss := services{&recordingService{name: "a", log: &log}, &recordingService{name: "b", log: &log}}
	if err := ss.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ss.stop()
	if want := []string{"start a", "start b", "stop b", "stop a"}; !slices.Equal(log, want) {
		t.Fatalf("%v, want %v", log, want)
	}
}

func TestServicesThatFailToStartStopThoseStarted(t *testing.T) {
	var log []string
	boom := errors.New("boom")
	ss := services{&recordingService{name: "a", log: &log}, &recordingService{name: "b", log: &log, err: boom},
		&recordingService{name: "c", log: &log}}
	if err := ss.start(context.Background()); !errors.Is(err, boom) {
		t.Fatalf("start = %v, want boom", err)
	}
	if want := []string{"start a", "start b", "stop a"}; !slices.Equal(log, want) {
		t.Fatalf("%v, want %v", log, want)
	}
}

func TestRoutineStopWithoutStartDoesNothing(t *testing.T) {
	var r routine
	r.stop()
}
