package core_test

import (
	"encoding/json"
	"fmt"
	"log"
	"time"

	"github.com/gworker/gworker/core"
)

// A job encodes as JSON with the columns of graphile-worker's jobs view and
// its state, as gworker jobs --json and the admin API print it.
func ExampleJob_MarshalJSON() {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	lastError := "SMTP timeout"
	job := core.Job{ID: 42, TaskIdentifier: "send_email", Payload: json.RawMessage(`{"to":"ada@example.com"}`),
		RunAt: at, Attempts: 3, MaxAttempts: 3, LastError: &lastError, CreatedAt: at, UpdatedAt: at, Revision: 1,
		Flags: []string{"vip"}}
	b, err := json.MarshalIndent(job, "", "  ")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(b))
	// Output:
	// {
	//   "id": 42,
	//   "queue_name": null,
	//   "task_identifier": "send_email",
	//   "payload": {
	//     "to": "ada@example.com"
	//   },
	//   "priority": 0,
	//   "run_at": "2030-01-02T03:04:05Z",
	//   "attempts": 3,
	//   "max_attempts": 3,
	//   "last_error": "SMTP timeout",
	//   "created_at": "2030-01-02T03:04:05Z",
	//   "updated_at": "2030-01-02T03:04:05Z",
	//   "key": null,
	//   "locked_at": null,
	//   "locked_by": null,
	//   "revision": 1,
	//   "flags": [
	//     "vip"
	//   ],
	//   "state": "failed"
	// }
}
