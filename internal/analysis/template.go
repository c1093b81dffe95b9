package analysis

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// Placeholders a query template may use, as Flagger spells them.
var placeholders = []string{"namespace", "service", "target", "stable", "interval"}

var placeholderRE = regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)

// rendered is a template with its placeholders replaced, and where each
// replacement came from, so that a parser's position in the query can be
// reported in the user's template.
type rendered struct {
	query string
	spans []span
}

type span struct{ tplStart, tplEnd, outStart, outEnd int }

// vars is what the placeholders stand for in t's analysis. interval is the
// window in Prometheus's duration notation.
func vars(t Target, interval time.Duration) map[string]string {
	return map[string]string{
		"namespace": t.Namespace,
		"service":   t.Service,
		"target":    t.Canary,
		"stable":    t.Stable,
		"interval":  promDuration(interval),
	}
}

// promDuration writes d as PromQL does, e.g. 1m or 90s.
func promDuration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	return model.Duration(d.Round(time.Millisecond)).String()
}

// render replaces tpl's placeholders from vs. An unknown placeholder, or
// braces that are not one, is an error naming its line and column.
func render(tpl string, vs map[string]string) (rendered, error) {
	var b strings.Builder
	var r rendered
	last := 0
	for _, m := range placeholderRE.FindAllStringSubmatchIndex(tpl, -1) {
		name := tpl[m[2]:m[3]]
		v, ok := vs[name]
		if !ok {
			line, col := lineCol(tpl, m[0])
			return rendered{}, fmt.Errorf("%d:%d: unknown placeholder {{ %s }}: want one of %s", line, col, name, strings.Join(placeholders, ", "))
		}
		b.WriteString(tpl[last:m[0]])
		start := b.Len()
		b.WriteString(v)
		r.spans = append(r.spans, span{m[0], m[1], start, b.Len()})
		last = m[1]
	}
	b.WriteString(tpl[last:])
	for i := 0; ; i++ {
		j := strings.Index(tpl[i:], "{{")
		if j < 0 {
			break
		}
		if i += j; !r.covers(i) {
			line, col := lineCol(tpl, i)
			return rendered{}, fmt.Errorf("%d:%d: {{ opens no placeholder: want {{ name }} with one of %s", line, col, strings.Join(placeholders, ", "))
		}
	}
	r.query = b.String()
	return r, nil
}

// covers reports whether a template offset is inside a placeholder.
func (r rendered) covers(tplOffset int) bool {
	for _, s := range r.spans {
		if tplOffset >= s.tplStart && tplOffset < s.tplEnd {
			return true
		}
	}
	return false
}

// templateOffset maps an offset in the rendered query back to the
// template; inside a replacement it is the placeholder's start.
func (r rendered) templateOffset(out int) int {
	shift := 0 // template offset minus query offset before out
	for _, s := range r.spans {
		if out < s.outStart {
			break
		}
		if out < s.outEnd {
			return s.tplStart
		}
		shift = s.tplEnd - s.outEnd
	}
	return out + shift
}

// lineCol is the 1-based line and column of a byte offset, as Prometheus's
// parser counts them.
func lineCol(s string, off int) (line, col int) {
	off = min(max(off, 0), len(s))
	line = 1 + strings.Count(s[:off], "\n")
	return line, off - strings.LastIndex(s[:off], "\n")
}
