// Package output is the one printer every reporting command uses: a result
// is written as a table for people, or as JSON or YAML for programs. The JSON
// and YAML forms share one set of field names (the json tags), so a script
// can switch between them freely.
package output

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"sigs.k8s.io/yaml"
)

// Format is an output format chosen with -o/--output.
type Format string

// The formats msctl prints.
const (
	Table Format = "table"
	JSON  Format = "json"
	YAML  Format = "yaml"
)

// Formats lists the accepted -o values, for help text and completion.
func Formats() []Format { return []Format{Table, JSON, YAML} }

// ParseFormat checks an -o value.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats() {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("unknown output format %q (want table, json or yaml)", s)
}

// Texter is a result whose form for people is a sentence or a short block
// rather than a table; it wins over Tabular in table format.
type Texter interface {
	Text() string
}

// Tabular is a result that knows its table form. Results that only make
// sense as documents (a rendered manifest, a config file) don't implement it
// and are written as YAML when a table is asked for.
type Tabular interface {
	Table() TableData
}

// TableData is a header and rows of cells.
type TableData struct {
	Header []string
	Rows   [][]string
}

// Options tune how a table looks on a terminal.
type Options struct {
	// Color makes the header bold; only set when the stream is a terminal.
	Color bool
}

// Write prints v in format f.
func Write(w io.Writer, f Format, v any, opts Options) error {
	switch f {
	case JSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case YAML:
		return writeYAML(w, v)
	case Table, "":
		switch t := v.(type) {
		case Texter:
			_, err := io.WriteString(w, t.Text())
			return err
		case Tabular:
			return writeTable(w, t.Table(), opts)
		default:
			return writeYAML(w, v)
		}
	default:
		return fmt.Errorf("unknown output format %q", f)
	}
}

func writeYAML(w io.Writer, v any) error {
	b, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

const (
	bold   = "\x1b[1m"
	reset  = "\x1b[0m"
	gutter = 3
)

// writeTable pads cells itself rather than using text/tabwriter, which counts
// the bytes of colour escapes as width and would misalign a bold header.
func writeTable(w io.Writer, t TableData, opts Options) error {
	widths := make([]int, len(t.Header))
	grow := func(row []string) {
		for i, cell := range row {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}
	grow(t.Header)
	for _, row := range t.Rows {
		grow(row)
	}
	var b strings.Builder
	line := func(row []string, style string) {
		for i, cell := range row {
			if style != "" {
				b.WriteString(style + cell + reset)
			} else {
				b.WriteString(cell)
			}
			if i < len(row)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell)+gutter))
			}
		}
		b.WriteByte('\n')
	}
	if len(t.Header) > 0 {
		style := ""
		if opts.Color {
			style = bold
		}
		line(t.Header, style)
	}
	for _, row := range t.Rows {
		line(row, "")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
