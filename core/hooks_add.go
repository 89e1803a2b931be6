package core

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// This file applies BeforeSchedule and AroundAdd to the paths that add jobs:
// the client's (AddRawJob, which AddJob and AddBatchJob go through, and
// AddJobs) and the cron runner's.

// addSource tells a handler's call from any other client call.
func addSource(ctx context.Context) AddSource {
	if JobFromContext(ctx) != nil {
		return AddFromHandler
	}
	return AddFromClient
}

// unhooked returns a copy of the client without hooks, which runs the plain
// add paths.
func (u *Utils) unhooked() *Utils {
	c := *u
	c.hooks = nil
	return &c
}

// addRawJobHooked is AddRawJob through the hooks.
func (u *Utils) addRawJobHooked(ctx context.Context, identifier string, payload any, spec *JobSpec) (*Job, error) {
	body, err := encodePayload("payload", payload)
	if err != nil {
		return nil, err
	}
	sj := &ScheduledJob{Task: identifier, Payload: body, Source: addSource(ctx)}
	if spec != nil {
		sj.Spec = *spec
		sj.Spec.Flags = slices.Clone(spec.Flags)
	}
	h := u.hooks
	var job *Job
	add := func(ctx context.Context) error {
		switch d, name := h.beforeSchedule(ctx, sj); d.action {
		case actionSkip:
			return fmt.Errorf("gworker: add job %q: %w (hook of %s)", identifier, ErrAddSkipped, name)
		case actionFail:
			return &AddRejectedError{Hook: name, Task: identifier, Message: d.message}
		}
		p := sj.Payload
		if len(p) == 0 {
			p = json.RawMessage("{}")
		}
		var err error
		job, err = u.unhooked().AddRawJob(ctx, identifier, p, &sj.Spec)
		if err == nil && h.observing() {
			h.emit(ctx, JobAdded{Job: job, Source: sj.Source})
		}
		return err
	}
	if len(h.aroundAdds) > 0 {
		err = h.aroundAdd(ctx, []*ScheduledJob{sj}, add)
	} else {
		err = add(ctx)
	}
	if err != nil {
		return nil, err
	}
	if job == nil {
		return nil, fmt.Errorf("gworker: add job %q: an AroundAdd hook returned success without adding the job", identifier)
	}
	return job, nil
}

// addJobsHooked is AddJobs through the hooks: skipped jobs are left out, a
// refused one fails the call before anything is added.
func (u *Utils) addJobsHooked(ctx context.Context, jobs []NewJob) ([]*Job, error) {
	source := addSource(ctx)
	sjs := make([]*ScheduledJob, len(jobs))
	for i, j := range jobs {
		body, err := encodePayload(fmt.Sprintf("jobs[%d].Payload", i), j.Payload)
		if err != nil {
			return nil, err
		}
		sjs[i] = &ScheduledJob{Task: j.Identifier, Payload: body, Spec: j.Spec, Source: source}
		sjs[i].Spec.Flags = slices.Clone(j.Spec.Flags)
	}
	h := u.hooks
	var added []*Job
	add := func(ctx context.Context) error {
		keep := make([]NewJob, 0, len(sjs))
		for i, sj := range sjs {
			switch d, name := h.beforeSchedule(ctx, sj); d.action {
			case actionSkip:
				continue
			case actionFail:
				return &AddRejectedError{Hook: name, Task: sj.Task, Field: fmt.Sprintf("jobs[%d]", i), Message: d.message}
			}
			p := sj.Payload
			if len(p) == 0 {
				p = json.RawMessage("{}")
			}
			keep = append(keep, NewJob{Identifier: jobs[i].Identifier, Payload: p, Spec: sj.Spec})
		}
		var err error
		added, err = u.unhooked().AddJobs(ctx, keep)
		if err == nil && h.observing() {
			for _, j := range added {
				h.emit(ctx, JobAdded{Job: j, Source: source})
			}
		}
		return err
	}
	var err error
	if len(h.aroundAdds) > 0 {
		err = h.aroundAdd(ctx, sjs, add)
	} else {
		err = add(ctx)
	}
	if err != nil {
		return nil, err
	}
	return added, nil
}

// beforeCronSchedule passes the cron jobs of minute through the
// BeforeSchedule hooks, before the statement that adds them. Skipped and
// refused entries are left out; an unusable rewrite is logged and dropped.
func (h *hookSet) beforeCronSchedule(ctx context.Context, minute time.Time, backfilled bool, specs []cronSpec) []cronSpec {
	if h == nil || len(h.beforeSched) == 0 {
		return specs
	}
	out := specs[:0:0]
	for _, s := range specs {
		sj := &ScheduledJob{Task: s.Task, Payload: s.Payload, Source: AddFromCron,
			Cron: &CronJobInfo{Identifier: s.Identifier, Minute: minute, Backfilled: backfilled}}
		if s.Queue != nil {
			sj.Spec.QueueName = *s.Queue
		}
		if s.MaxAttempts != nil {
			sj.Spec.MaxAttempts = *s.MaxAttempts
		}
		if s.Priority != nil {
			sj.Spec.Priority = *s.Priority
		}
		if s.JobKey != nil {
			sj.Spec.JobKey = *s.JobKey
		}
		if s.JobKeyMode != nil {
			sj.Spec.JobKeyMode = JobKeyMode(*s.JobKeyMode)
		}
		log := h.log.With(slog.String("cron_entry", s.Identifier), slog.Time("minute", minute))
		d, name := h.beforeSchedule(ctx, sj)
		switch d.action {
		case actionSkip:
			log.Debug("gworker: cron job skipped by a BeforeSchedule hook", slog.String("plugin", name))
			continue
		case actionFail:
			log.Error("gworker: cron job refused by a BeforeSchedule hook; not added", slog.String("plugin", name),
				slog.String("message", d.message))
			continue
		}
		if err := sj.Spec.validate("ScheduledJob.Spec"); err != nil || (len(sj.Payload) > 0 && !json.Valid(sj.Payload)) {
			if err == nil {
				err = &ValidationError{Field: "ScheduledJob.Payload", Reason: "is not valid JSON"}
			}
			log.Error("gworker: a BeforeSchedule hook rewrote a cron job into one that cannot be added; adding it unchanged",
				slog.Any("error", err))
			out = append(out, s)
			continue
		}
		n := s
		n.Payload = sj.Payload
		if len(n.Payload) == 0 {
			n.Payload = json.RawMessage("{}")
		}
		n.Queue, n.MaxAttempts, n.Priority, n.JobKey, n.JobKeyMode = nil, nil, nil, nil, nil
		if sj.Spec.QueueName != "" {
			n.Queue = &sj.Spec.QueueName
		}
		if sj.Spec.MaxAttempts != 0 {
			n.MaxAttempts = &sj.Spec.MaxAttempts
		}
		if sj.Spec.Priority != 0 {
			n.Priority = &sj.Spec.Priority
		}
		if sj.Spec.JobKey != "" {
			n.JobKey = &sj.Spec.JobKey
			mode := string(sj.Spec.JobKeyMode)
			if mode == "" {
				mode = string(Replace)
			}
			n.JobKeyMode = &mode
		}
		out = append(out, n)
	}
	return out
}
