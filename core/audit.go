package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// AuditEntry is a change recorded in the schema's audit log
// (_private_gworker_audit), which the admin page writes for every change
// it makes.
type AuditEntry struct {
	// ID and At are set by the database.
	ID int64
	At time.Time
	// Actor is who made the change (an identity's name).
	Actor string
	// Action names the change, e.g. "retry" or "cleanup".
	Action string
	// Detail is the request as JSON (a filter, a reason); nil means {}.
	Detail json.RawMessage
	// JobIDs are the jobs changed, at most the first 1000.
	JobIDs []int64
	// Matched and Changed count the jobs selected and changed.
	Matched, Changed int64
	// Error is why the change failed; "" when it did not.
	Error string
}

// maxAuditIDs caps AuditEntry.JobIDs as stored.
const maxAuditIDs = 1000

// RecordAudit appends e to the audit log and returns its id.
func (u *Utils) RecordAudit(ctx context.Context, e AuditEntry) (int64, error) {
	if e.Actor == "" {
		return 0, &ValidationError{Field: "AuditEntry.Actor", Reason: "must not be empty"}
	}
	if e.Action == "" {
		return 0, &ValidationError{Field: "AuditEntry.Action", Reason: "must not be empty"}
	}
	detail := "{}"
	if len(e.Detail) > 0 {
		if !json.Valid(e.Detail) {
			return 0, &ValidationError{Field: "AuditEntry.Detail", Value: string(e.Detail), Reason: "is not valid JSON"}
		}
		detail = string(e.Detail)
	}
	ids := nonNil(e.JobIDs)
	if len(ids) > maxAuditIDs {
		ids = ids[:maxAuditIDs]
	}
	var id int64
	if _, err := queryOne(ctx, u.ex, newRenderer(u.schema).render(`insert into {{schema}}._private_gworker_audit
  (actor, action, detail, job_ids, matched, changed, error)
values ($1::text, $2::text, $3::text::jsonb, $4::bigint[], $5::bigint, $6::bigint, $7::text) returning id`),
		[]any{e.Actor, e.Action, detail, ids, e.Matched, e.Changed, nullString(e.Error)}, &id); err != nil {
		return 0, fmt.Errorf("gworker: record audit entry%s: %w", u.noRegistryHint(err), err)
	}
	return id, nil
}

// ListAudit returns the latest limit entries of the audit log, newest
// first (limit 0 means 50, at most 1000).
func (u *Utils) ListAudit(ctx context.Context, limit int) ([]AuditEntry, error) {
	switch {
	case limit == 0:
		limit = 50
	case limit < 0 || limit > 1000:
		return nil, &ValidationError{Field: "limit", Value: limit, Reason: "must be between 1 and 1000 (0 means 50)"}
	}
	rows, err := u.ex.Query(ctx, newRenderer(u.schema).render(`select id, at, actor, action, detail::text, job_ids, matched, changed, error
from {{schema}}._private_gworker_audit order by id desc limit $1::int`), int32(limit))
	if err != nil {
		return nil, fmt.Errorf("gworker: list audit entries%s: %w", u.noRegistryHint(err), err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var (
			e      AuditEntry
			detail string
			msg    *string
		)
		if err := rows.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &detail, &e.JobIDs, &e.Matched, &e.Changed, &msg); err != nil {
			return nil, fmt.Errorf("gworker: list audit entries: %w", err)
		}
		e.Detail = json.RawMessage(detail)
		if msg != nil {
			e.Error = *msg
		}
		out = append(out, e)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("gworker: list audit entries: %w", err)
	}
	return out, nil
}
