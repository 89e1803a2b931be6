package cronspec_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/gworker/gworker/cronspec"
)

func ExampleParse() {
	crontab, err := cronspec.Parse(`
# m h dom mon dow task ?options {payload}
30 4 * * * send_report ?fill=2h&queue=reports {to: 'ops', formats: ['pdf', 'csv',],}
*/15 * * * 1-5 poll_feeds ?id=poll_weekdays&max=3
0 9 * * 1 standup ?tz=Europe/Paris
`)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range crontab {
		fmt.Printf("line %d: %s runs %s at %q", e.Line, e.Identifier, e.Task, e.Schedule)
		if e.Payload != nil {
			fmt.Printf(" with %s", e.Payload)
		}
		fmt.Println()
	}
	fmt.Println(crontab[0].Options.Fill, crontab[0].Options.Queue)

	// Every problem is reported, with its line and column.
	_, err = cronspec.Parse("0 24 * * * report\n* * * * * other ?max=0\n")
	fmt.Println(err)
	var perr *cronspec.ParseError
	fmt.Println(errors.As(err, &perr), len(perr.Errors))
	// Output:
	// line 3: send_report runs send_report at "30 4 * * *" with {"to":"ops","formats":["pdf","csv"]}
	// line 4: poll_weekdays runs poll_feeds at "*/15 * * * 1-5"
	// line 5: standup runs standup at "0 9 * * 1"
	// 2h0m0s reports
	// line 1, column 3: hour 24 is out of range 0-23
	// line 2, column 22: max "0": expected an integer from 1 to 32767
	// true 2
}

func ExampleSchedule_Next() {
	// Every 13th of the month and every Friday (both fields restricted: either matches).
	s, _ := cronspec.ParseSchedule("0 0 13 * 5")
	t := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 4; i++ {
		t = s.Next(t)
		fmt.Println(t.Format("Mon Jan 2 15:04 MST"))
	}

	// 02:30 in Paris does not exist on 2025-03-30: that day it fires at 03:00.
	paris, _ := time.LoadLocation("Europe/Paris")
	s, _ = cronspec.ParseSchedule("30 2 * * *")
	s.Location = paris
	t = time.Date(2025, 3, 29, 12, 0, 0, 0, time.UTC)
	for i := 0; i < 2; i++ {
		t = s.Next(t)
		fmt.Println(t.Format(time.RFC3339))
	}
	// Output:
	// Fri Jun 6 00:00 UTC
	// Fri Jun 13 00:00 UTC
	// Fri Jun 20 00:00 UTC
	// Fri Jun 27 00:00 UTC
	// 2025-03-30T03:00:00+02:00
	// 2025-03-31T02:30:00+02:00
}

func ExampleDailyAt() {
	e, err := cronspec.DailyAt(4, 30, "send_report").
		Fill(2 * time.Hour).
		Queue("reports").
		TZ("America/New_York").
		Payload(map[string]string{"to": "ops"}).
		Entry()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(e)

	_, err = cronspec.DailyAt(24, 0, "send_report").MaxAttempts(0).Entry()
	fmt.Println(err)
	// Output:
	// 30 4 * * * send_report ?fill=2h&queue=reports&tz=America/New_York {"to":"ops"}
	// cronspec: DailyAt: hour 24 is out of range 0-23
	// cronspec: max attempts 0: expected an integer from 1 to 32767
}
