package poolerror_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/internal/poolerror"
)

func TestErrorGivesTheDriversOptionAndWrapsUnsupported(t *testing.T) {
	for _, e := range []*poolerror.Error{
		{ListenOption: "pqdriver.ListenDSN(url)"},
		{Reason: "no notification reached it within 5s", ListenOption: "pqdriver.ListenDSN(url)"},
	} {
		msg := e.Error()
		if !errors.Is(e, core.ErrNotificationsUnsupported) {
			t.Errorf("%q does not wrap core.ErrNotificationsUnsupported", msg)
		}
		for _, want := range []string{"LISTEN cannot work on this connection: ", "pqdriver.ListenDSN(url)", "--listen-connection URL"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%q does not say %q", msg, want)
			}
		}
		if want := e.Reason; want == "" && !strings.Contains(msg, "PgBouncer in transaction pooling mode") || !strings.Contains(msg, want) {
			t.Errorf("%q does not give the reason", msg)
		}
	}
}
