package telemetry_test

import (
	"context"
	"fmt"
	"log/slog"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/internal/pgtest"
	"github.com/gworker/gworker/plugin/telemetry"
)

type Invoice struct {
	Number string `json:"number"`
}

func (Invoice) TaskIdentifier() string { return "send_invoice" }

// Trace a job from the request that added it to its run. Here one process
// does both, with an in-memory recorder; in production the client and the
// worker usually run in different processes, each with its own exporter,
// and the link still holds because the trace context travels in the
// payload.
func ExampleNew() {
	ctx := context.Background()
	dbURL, drop, err := pgtest.Database(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer drop()
	db, err := pgxdriver.Open(ctx, dbURL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()

	recorder := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
	tel, err := telemetry.New(telemetry.Options{TracerProvider: tp})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tel.Close()

	utils, err := core.NewUtils(db, core.UtilsOptions{Schema: "telemetry_example", Plugins: []core.Plugin{tel}})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := utils.Migrate(ctx); err != nil {
		fmt.Println(err)
		return
	}
	reqCtx, req := tp.Tracer("shop").Start(ctx, "POST /checkout")
	if _, err := utils.AddJob(reqCtx, Invoice{Number: "INV-1"}, nil); err != nil {
		fmt.Println(err)
		return
	}
	req.End()

	worker, err := core.NewWorker(core.WorkerOptions{
		Database: db,
		Schema:   "telemetry_example",
		Logger:   slog.New(slog.DiscardHandler),
		Plugins:  []core.Plugin{tel},
		Tasks: []core.Task{core.NewTask(func(ctx context.Context, job *core.Job, inv Invoice) error {
			return nil
		})},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := worker.RunOnce(ctx); err != nil {
		fmt.Println(err)
		return
	}

	spans := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range recorder.Ended() {
		spans[s.Name()] = s
		fmt.Printf("%s (%s)\n", s.Name(), s.SpanKind())
	}
	add, run := spans["gworker add send_invoice"], spans["gworker run send_invoice"]
	fmt.Println("add span is a child of the request:", add.Parent().SpanID() == req.SpanContext().SpanID())
	fmt.Println("run span links to the add span:", run.Links()[0].SpanContext.SpanID() == add.SpanContext().SpanID())
	// Output:
	// gworker add send_invoice (producer)
	// POST /checkout (internal)
	// gworker run send_invoice (consumer)
	// add span is a child of the request: true
	// run span links to the add span: true
}
