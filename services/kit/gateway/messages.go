package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"

	"github.com/msctl/msctl/services/kit/validation"
)

// Decoding and parameter errors come from encoding/json, protojson and
// grpc-gateway, and the generated handlers flatten them with %v before
// the error handler sees them. They are rewritten here into one line that
// names the field or says the body is not JSON, without the parsers'
// internals (strconv.ParseInt, line:column positions).

// bodyMarshaler is the house JSONPb whose decoder reports readable errors.
type bodyMarshaler struct{ *runtime.JSONPb }

// NewDecoder decodes like JSONPb and rewrites its errors.
func (m *bodyMarshaler) NewDecoder(r io.Reader) runtime.Decoder {
	d := m.JSONPb.NewDecoder(r)
	return runtime.DecoderFunc(func(v any) error {
		err := d.Decode(v)
		if err == nil || errors.Is(err, io.EOF) { // an empty body is an empty message
			return err
		}
		return bodyError(err)
	})
}

// protoPrefix matches protojson's error prefix, whose space is sometimes a
// non-breaking one on purpose, and its position, which means nothing to a
// caller who sent a one-line body.
var protoPrefix = regexp.MustCompile(`^proto:[\s\x{00a0}]+(?:syntax error )?(?:\(line \d+:\d+\):[\s\x{00a0}]*)?`)

var invalidValue = regexp.MustCompile(`^invalid value for (\w+) field (\S+): (.*)$`)

func bodyError(err error) error {
	var tooBig *http.MaxBytesError
	var syntax *json.SyntaxError
	switch {
	case errors.As(err, &tooBig):
		// writeError answers 413 on this wording.
		return fmt.Errorf("request body too large (limit %d bytes)", tooBig.Limit)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("request body is not valid JSON: unexpected end of input")
	case errors.As(err, &syntax):
		return fmt.Errorf("request body is not valid JSON: %s (at byte %d)", syntax.Error(), syntax.Offset)
	}
	msg := err.Error()
	loc := protoPrefix.FindStringIndex(msg)
	if loc == nil {
		return fmt.Errorf("request body: %s", validation.OneLine(msg))
	}
	msg = msg[loc[1]:]
	if m := invalidValue.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("%s: invalid value %s for %s %s field", m[2], clip(m[3]), article(m[1]), m[1])
	}
	if strings.Contains(protoPrefix.FindString(err.Error()), "syntax error") {
		return fmt.Errorf("request body is not valid JSON: %s", validation.OneLine(msg))
	}
	return fmt.Errorf("request body: %s", validation.OneLine(msg))
}

func article(kind string) string {
	if kind != "" && strings.ContainsRune("aeio", rune(kind[0])) {
		return "an"
	}
	return "a"
}

var (
	// grpc-gateway's query parameter errors: `parsing field "page_size": ...`.
	queryParam = regexp.MustCompile(`^parsing (?:field|list) "([^"]+)": (.*)$`)
	// The generated path parameter errors.
	pathParam = regexp.MustCompile(`^type mismatch, parameter: (\S+), error: (.*)$`)
	numError  = regexp.MustCompile(`^strconv\.Parse(Int|Uint|Float|Bool): parsing "(.*)": (invalid syntax|value out of range)$`)
)

// readable rewrites the INVALID_ARGUMENT messages grpc-gateway makes from
// query and path parameters; any other message is returned unchanged.
func readable(msg string) string {
	m := queryParam.FindStringSubmatch(msg)
	if m == nil {
		m = pathParam.FindStringSubmatch(msg)
	}
	if m == nil {
		return msg
	}
	field, why := m[1], m[2]
	if n := numError.FindStringSubmatch(why); n != nil {
		value := clip(fmt.Sprintf("%q", n[2]))
		switch {
		case n[3] == "value out of range":
			return fmt.Sprintf("%s: %s is out of range", field, value)
		case n[1] == "Bool":
			return fmt.Sprintf("%s: %s is not a boolean (true or false)", field, value)
		case n[1] == "Float":
			return fmt.Sprintf("%s: %s is not a number", field, value)
		}
		return fmt.Sprintf("%s: %s is not an integer", field, value)
	}
	return field + ": " + why
}

// clip keeps an echoed value short.
func clip(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
