package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/msctl/msctl/internal/analysis"
	"gopkg.in/yaml.v3"
)

// Entry is one leaf value of the effective project and where it came from.
type Entry struct {
	Key    string `json:"key"`
	Value  string `json:"value"`
	Origin string `json:"origin"`
}

// Entries lists every leaf of the effective project in file order.
func (l *Loaded) Entries() []Entry {
	var out []Entry
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		switch {
		case v.Kind() == reflect.Pointer:
			// nil is a key left unset (a service's canary keys): nothing to show.
			if !v.IsNil() {
				walk(v.Elem(), path)
			}
		case v.Type() == pauseType:
			value := "{}"
			if p := v.Interface().(Pause); !p.Indefinite() {
				value = p.Duration.String()
			}
			out = append(out, Entry{path, value, l.Origin(path)})
		case v.Type() == stepType && v.Interface().(Step).Kind() == StepWeight:
			// A weight step shows as the file's shorthand does.
			out = append(out, Entry{path, strconv.Itoa(v.Interface().(Step).Weight), l.Origin(path)})
		case v.Type() == durationType:
			out = append(out, Entry{path, Duration(v.Int()).String(), l.Origin(path)})
		case v.Kind() == reflect.Struct:
			for i := range v.NumField() {
				if sparseTypes[v.Type()] && v.Field(i).IsZero() {
					continue
				}
				name := jsonName(v.Type().Field(i))
				walk(v.Field(i), joinPath(path, name))
			}
		case v.Kind() == reflect.Slice:
			if v.Len() == 0 {
				out = append(out, Entry{path, "[]", l.Origin(path)})
			}
			for i := range v.Len() {
				walk(v.Index(i), fmt.Sprintf("%s[%d]", path, i))
			}
		case v.Kind() == reflect.Map:
			keys := make([]string, 0, v.Len())
			for _, k := range v.MapKeys() {
				keys = append(keys, k.String())
			}
			slices.Sort(keys)
			for _, k := range keys {
				walk(v.MapIndex(reflect.ValueOf(k)), joinPath(path, k))
			}
		case v.Kind() == reflect.Int:
			out = append(out, Entry{path, strconv.FormatInt(v.Int(), 10), l.Origin(path)})
		case v.Kind() == reflect.Bool:
			out = append(out, Entry{path, strconv.FormatBool(v.Bool()), l.Origin(path)})
		case v.Kind() == reflect.Float64:
			out = append(out, Entry{path, strconv.FormatFloat(v.Float(), 'g', -1, 64), l.Origin(path)})
		default:
			out = append(out, Entry{path, v.String(), l.Origin(path)})
		}
	}
	walk(reflect.ValueOf(l.Project).Elem(), "")
	return out
}

// AnnotatedYAML renders the effective project as YAML with each value's
// origin as a trailing comment, for `config view --show-origin`.
func (l *Loaded) AnnotatedYAML() ([]byte, error) {
	js, err := json.Marshal(l.Project)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(js, &doc); err != nil {
		return nil, err
	}
	var annotate func(n *yaml.Node, path string)
	annotate = func(n *yaml.Node, path string) {
		n.Style = 0 // JSON input parses as flow style; print block style
		switch n.Kind {
		case yaml.DocumentNode:
			annotate(n.Content[0], path)
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				n.Content[i].Style = 0
				annotate(n.Content[i+1], joinPath(path, n.Content[i].Value))
			}
			if len(n.Content) == 0 {
				n.LineComment = l.Origin(path)
			}
		case yaml.SequenceNode:
			for i, item := range n.Content {
				annotate(item, fmt.Sprintf("%s[%d]", path, i))
			}
			if len(n.Content) == 0 {
				n.Style = yaml.FlowStyle
				n.LineComment = l.Origin(path)
			}
		case yaml.ScalarNode:
			n.LineComment = l.Origin(path)
		}
	}
	annotate(&doc, "")
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	return b.Bytes(), enc.Close()
}

// sparseTypes are the structs most of whose keys are unused in any one
// value (a step is of one kind, a metric built in or custom): their unset
// keys are left out of Entries rather than listed as zeros.
var sparseTypes = map[reflect.Type]bool{
	stepType:                             true,
	reflect.TypeFor[Match]():             true,
	reflect.TypeFor[StringMatch]():       true,
	reflect.TypeFor[Metric]():            true,
	reflect.TypeFor[analysis.Relative](): true,
	reflect.TypeFor[CanaryOverride]():    true,
}

// jsonName is a field's key in the file: the name in its json tag.
func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return name
}
