package core

import (
	"log/slog"
	"time"
)

// localQueue holds the jobs a fetch locked for the whole worker
// (LocalQueueOptions) until a slot takes them, oldest first. Only the loop
// touches it.
type localQueue []buffered

// buffered is a job waiting in the local queue.
type buffered struct {
	job *Job
	at  time.Time // when it was fetched
}

// push appends jobs fetched at now.
func (q *localQueue) push(jobs []*Job, now time.Time) {
	for _, j := range jobs {
		*q = append(*q, buffered{job: j, at: now})
	}
}

// pop removes and returns the oldest job, nil when none waits.
func (q *localQueue) pop() *Job {
	if len(*q) == 0 {
		return nil
	}
	j := (*q)[0].job
	*q = (*q)[1:]
	return j
}

// remove takes the job with the given id out of the queue and returns it,
// nil when it does not wait here.
func (q *localQueue) remove(id int64) *Job {
	for i, b := range *q {
		if b.job.ID == id {
			*q = append((*q)[:i], (*q)[i+1:]...)
			return b.job
		}
	}
	return nil
}

// expire removes the jobs that waited ttl or longer at now and returns
// them, with how long until the next of the others expires (0 when none
// is left).
func (q *localQueue) expire(now time.Time, ttl time.Duration) (expired []*Job, next time.Duration) {
	keep := (*q)[:0]
	for _, b := range *q {
		if now.Sub(b.at) >= ttl {
			expired = append(expired, b.job)
		} else {
			keep = append(keep, b)
		}
	}
	*q = keep
	if len(keep) > 0 {
		next = keep[0].at.Add(ttl).Sub(now)
	}
	return expired, next
}

// ids adds the ids of the waiting jobs to known.
func (q localQueue) ids(known map[int64]bool) {
	for _, b := range q {
		known[b.job.ID] = true
	}
}

// enqueue puts fetched jobs in the local queue, and starts the TTL when
// they are the first to wait.
func (r *runner) enqueue(jobs []*Job) {
	if len(jobs) > 0 && len(r.buffer) == 0 {
		r.ttl.Reset(r.w.opts.LocalQueue.TTL)
	}
	r.buffer.push(jobs, r.clock.Now())
}

// expireBuffer hands back the jobs that waited in the local queue for its
// TTL, and starts the TTL of the next one.
func (r *runner) expireBuffer() {
	ttl := r.w.opts.LocalQueue.TTL
	now := r.clock.Now()
	r.emitExpiring(now, ttl)
	expired, next := r.buffer.expire(now, ttl)
	for _, j := range expired {
		r.completer.add(outcome{job: j, kind: outcomeRelease})
	}
	if len(expired) > 0 {
		r.w.log.Debug("gworker: local queue TTL expired; jobs returned", slog.Int("jobs", len(expired)))
	}
	if next > 0 {
		r.ttl.Reset(next)
	}
}
