// Package validation joins the problems a request's shape check finds
// into one error whose message is one line, so a caller reading an HTTP
// error body or a gRPC status, or a log line, sees every problem at once.
//
// It only joins; what is a problem is the API package's business.
package validation

import "strings"

// Join returns nil if every err is nil, otherwise an error listing the
// non-nil ones separated by "; ". Unlike errors.Join, which separates
// with newlines, the message stays on one line; errors.Is and errors.As
// still see every joined error.
func Join(errs ...error) error {
	var kept []error
	for _, err := range errs {
		if err != nil {
			kept = append(kept, err)
		}
	}
	if len(kept) == 0 {
		return nil
	}
	return problems(kept)
}

type problems []error

func (p problems) Error() string {
	msgs := make([]string, len(p))
	for i, err := range p {
		msgs[i] = OneLine(err.Error())
	}
	return strings.Join(msgs, "; ")
}

func (p problems) Unwrap() []error { return p }

// OneLine turns a multi-line message (from errors.Join, say) into one
// line, its non-blank lines trimmed and separated by "; ".
func OneLine(msg string) string {
	if !strings.ContainsAny(msg, "\r\n") {
		return msg
	}
	var parts []string
	for _, p := range strings.FieldsFunc(msg, func(r rune) bool { return r == '\n' || r == '\r' }) {
		if p = strings.TrimSpace(p); p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "; ")
}
