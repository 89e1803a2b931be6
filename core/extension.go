package core

import (
	"context"
	"fmt"
	"reflect"
)

// Extension is one value of typed application state given to a worker
// through WorkerOptions.Extensions: a database handle, a mailer, a
// configuration. Handlers (and run hooks) read it from their context by
// type with LookupExtension or ExtensionFromContext. Build one with
// WithExtension.
type Extension struct {
	typ   reflect.Type
	value any
}

// WithExtension returns an Extension holding v under the type T. T is the
// type the getters are asked for: to read an interface, name it,
// WithExtension[Mailer](smtp), since WithExtension(smtp) would hold the
// concrete type.
func WithExtension[T any](v T) Extension {
	return Extension{typ: reflect.TypeFor[T](), value: v}
}

// LookupExtension returns the worker's extension of type T, from a job
// handler's context (or a run hook's). It reports false when the worker has
// none, or ctx is not a handler's.
func LookupExtension[T any](ctx context.Context) (T, bool) {
	var zero T
	w, _ := ctx.Value(ctxKeyWorker).(*Worker)
	if w == nil {
		return zero, false
	}
	typ := reflect.TypeFor[T]()
	for _, e := range w.opts.Extensions {
		if e.typ == typ {
			v, ok := e.value.(T)
			if !ok { // a nil interface value
				return zero, true
			}
			return v, true
		}
	}
	return zero, false
}

// ExtensionFromContext is LookupExtension returning a *MissingExtensionError
// that names T when there is no such extension.
func ExtensionFromContext[T any](ctx context.Context) (T, error) {
	v, ok := LookupExtension[T](ctx)
	if !ok {
		_, inHandler := ctx.Value(ctxKeyWorker).(*Worker)
		return v, &MissingExtensionError{Type: reflect.TypeFor[T](), InHandler: inHandler}
	}
	return v, nil
}

// MissingExtensionError says that an extension was asked for that the
// worker does not have, or outside a handler.
type MissingExtensionError struct {
	Type      reflect.Type
	InHandler bool // false: the context is not a job handler's
}

func (e *MissingExtensionError) Error() string {
	if !e.InHandler {
		return fmt.Sprintf("gworker: no extension of type %v: the context is not a job handler's", e.Type)
	}
	return fmt.Sprintf("gworker: the worker has no extension of type %v; add core.WithExtension[%v](value) to WorkerOptions.Extensions",
		e.Type, e.Type)
}

// checkExtensions reports zero Extensions and two of one type.
func checkExtensions(exts []Extension) []error {
	var errs []error
	seen := map[reflect.Type]int{}
	for i, e := range exts {
		field := fmt.Sprintf("WorkerOptions.Extensions[%d]", i)
		if e.typ == nil {
			errs = append(errs, &ValidationError{Field: field, Reason: "is empty; build extensions with core.WithExtension"})
			continue
		}
		if j, dup := seen[e.typ]; dup {
			errs = append(errs, &ValidationError{Field: field, Value: e.typ.String(),
				Reason: fmt.Sprintf("has the same type as Extensions[%d]; a worker holds one extension per type", j)})
			continue
		}
		seen[e.typ] = i
	}
	return errs
}

// checkHookOptions validates the plugin and extension options of a worker.
func checkHookOptions(o *WorkerOptions) []error {
	return append(checkPlugins("WorkerOptions.Plugins", o.Plugins), checkExtensions(o.Extensions)...)
}
