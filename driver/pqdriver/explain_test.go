package pqdriver

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/lib/pq"
)

// An unnamed statement lost between lib/pq's two round trips (PgBouncer in
// transaction pooling mode) gets the fix added; the *pq.Error and its
// SQLSTATE stay reachable. Other errors pass unchanged.
func TestExplainLostUnnamedStatement(t *testing.T) {
	lost := &pq.Error{Code: "26000", Message: `unnamed prepared statement does not exist`}
	err := explain(fmt.Errorf("query: %w", lost))
	var pe *pq.Error
	if !errors.As(err, &pe) || pe.Code != "26000" {
		t.Errorf("explain(%v) = %v: the *pq.Error is lost", lost, err)
	}
	if !strings.Contains(err.Error(), "binary_parameters=yes") || !strings.Contains(err.Error(), "PgBouncer") {
		t.Errorf("explain(%v) = %q: want the cause and the fix", lost, err)
	}
	for _, other := range []error{
		&pq.Error{Code: "26000", Message: `prepared statement "x" does not exist`},
		&pq.Error{Code: "42P01", Message: `relation "x" does not exist`},
		errors.New("connection refused"),
	} {
		if got := explain(other); got != other {
			t.Errorf("explain(%v) = %v; want it unchanged", other, got)
		}
	}
}
