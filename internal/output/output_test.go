package output

import (
	"bytes"
	"testing"
)

type result struct {
	Name  string `json:"name"`
	Ready int    `json:"ready"`
}

type results []result

func (r results) Table() TableData {
	t := TableData{Header: []string{"NAME", "READY"}}
	for _, x := range r {
		t.Rows = append(t.Rows, []string{x.Name, itoa(x.Ready)})
	}
	return t
}

type sentence struct {
	Path string `json:"path"`
}

func (s sentence) Text() string { return "wrote " + s.Path + "\n" }

func itoa(i int) string { return string(rune('0' + i)) }

func TestWrite(t *testing.T) {
	rs := results{{"user", 2}, {"inventory", 1}}
	tests := []struct {
		name   string
		format Format
		v      any
		opts   Options
		want   string
	}{
		{"table", Table, rs, Options{}, "NAME        READY\nuser        2\ninventory   1\n"},
		{"table in colour", Table, rs, Options{Color: true}, "\x1b[1mNAME\x1b[0m        \x1b[1mREADY\x1b[0m\nuser        2\ninventory   1\n"},
		{"json", JSON, rs, Options{}, "[\n  {\n    \"name\": \"user\",\n    \"ready\": 2\n  },\n  {\n    \"name\": \"inventory\",\n    \"ready\": 1\n  }\n]\n"},
		{"yaml", YAML, rs, Options{}, "- name: user\n  ready: 2\n- name: inventory\n  ready: 1\n"},
		{"text wins in table format", Table, sentence{"a.yaml"}, Options{}, "wrote a.yaml\n"},
		{"text is not used for json", JSON, sentence{"a.yaml"}, Options{}, "{\n  \"path\": \"a.yaml\"\n}\n"},
		{"table falls back to yaml", Table, result{"user", 2}, Options{}, "name: user\nready: 2\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := Write(&b, tt.format, tt.v, tt.opts); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Errorf("got\n%q\nwant\n%q", b.String(), tt.want)
			}
		})
	}
}

func TestParseFormat(t *testing.T) {
	for _, s := range []string{"table", "json", "yaml"} {
		if f, err := ParseFormat(s); err != nil || string(f) != s {
			t.Errorf("ParseFormat(%q) = %q, %v", s, f, err)
		}
	}
	if _, err := ParseFormat("xml"); err == nil || err.Error() != `unknown output format "xml" (want table, json or yaml)` {
		t.Errorf("ParseFormat(xml) error = %v", err)
	}
}
