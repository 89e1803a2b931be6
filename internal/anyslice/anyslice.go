// Package anyslice holds the copy-on-write mapping the database/sql driver
// adapters apply to statement arguments and scan destinations.
package anyslice

// Map returns vals with every value for which f reports true replaced by
// f's result. When f replaces nothing it returns vals itself, so that the
// common case allocates nothing; otherwise a copy, leaving vals untouched.
func Map(vals []any, f func(any) (any, bool)) []any {
	var out []any
	for i, v := range vals {
		w, ok := f(v)
		if !ok {
			continue
		}
		if out == nil {
			out = append([]any(nil), vals...)
		}
		out[i] = w
	}
	if out == nil {
		return vals
	}
	return out
}
