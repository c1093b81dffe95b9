package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Pos is a line and column in the project file, both counted from 1.
type Pos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
}

var (
	durationType = reflect.TypeFor[Duration]()
	stepType     = reflect.TypeFor[Step]()
	pauseType    = reflect.TypeFor[Pause]()
)

// aliasAllowance is how many values aliases may add beyond twice the file's
// own nodes: plenty for anchors that repeat a block per service, and far
// short of what nested aliases ("billion laughs") expand to.
const aliasAllowance = 10_000

// decoder fills a Go value from a YAML node tree strictly: unknown keys,
// repeated keys and wrong types are problems, each with its position and
// key path. yaml.v3's own decoding reports a line but not the key, and stops
// at the first unknown field.
type decoder struct {
	*problems
	// limit bounds how many values decoding visits, and visited counts them.
	// yaml.v3 bounds alias expansion when it decodes into Go values, but a
	// node tree keeps aliases as pointers, and following them is this
	// decoder's doing.
	limit, visited int
	// overrun is the node at which the limit was reached; decoding stops.
	overrun *yaml.Node
}

func newDecoder(ps *problems, root *yaml.Node) *decoder {
	return &decoder{problems: ps, limit: 2*countNodes(root) + aliasAllowance}
}

// countNodes counts the nodes of a tree as written, aliases not followed.
func countNodes(n *yaml.Node) int {
	count := 1
	for _, c := range n.Content {
		count += countNodes(c)
	}
	return count
}

// visit counts one value, and reports false once the limit is reached.
func (d *decoder) visit(n *yaml.Node) bool {
	if d.overrun == nil {
		if d.visited++; d.visited > d.limit {
			d.overrun = n
		}
	}
	return d.overrun == nil
}

// overrunError is the one problem of a file whose aliases expand past the
// limit; the problems found on the way are mere consequences.
func (d *decoder) overrunError() error {
	return &Error{Problems: []Problem{{
		Source: d.source, Line: d.overrun.Line, Column: d.overrun.Column,
		Message: fmt.Sprintf("YAML aliases expand the file beyond %d values; nested aliases are refused", d.limit),
	}}}
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	for n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if !d.visit(n) {
		return
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	d.positions[path] = Pos{n.Line, n.Column}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an empty value keeps the zero value, and the default
	}
	// A pointer is a key that may be left unset (a service's canary
	// settings, a metric's bounds): written, it gets a value.
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		v = v.Elem()
	}
	switch v.Type() {
	case durationType:
		d.duration(n, v, path)
		return
	case stepType:
		d.step(n, v, path)
		return
	case pauseType:
		d.pause(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.mapping(n, v, path)
	case reflect.Slice:
		d.sequence(n, v, path)
	case reflect.Map:
		if v.Type().Elem().Kind() == reflect.String {
			d.stringMap(n, v, path)
		} else {
			d.structMap(n, v, path)
		}
	case reflect.String:
		if d.expect(n, yaml.ScalarNode, path, "a string") {
			v.SetString(n.Value)
		}
	case reflect.Bool:
		if !d.expect(n, yaml.ScalarNode, path, "true or false") {
			return
		}
		// YAML 1.2 reads yes, no, on, off and "true" as strings; they are
		// refused here rather than taken as false.
		b, err := strconv.ParseBool(n.Value)
		if n.Tag != "!!bool" || err != nil {
			d.at(path, "expected true or false, got %q", n.Value)
			return
		}
		v.SetBool(b)
	case reflect.Int:
		if !d.expect(n, yaml.ScalarNode, path, "an integer") {
			return
		}
		i, err := strconv.Atoi(n.Value)
		if n.Tag != "!!int" || err != nil {
			d.at(path, "expected an integer, got %q", n.Value)
			return
		}
		v.SetInt(int64(i))
	case reflect.Float64:
		if !d.expect(n, yaml.ScalarNode, path, "a number") {
			return
		}
		f, err := strconv.ParseFloat(n.Value, 64)
		if (n.Tag != "!!int" && n.Tag != "!!float") || err != nil {
			d.at(path, "expected a number, got %q", n.Value)
			return
		}
		v.SetFloat(f)
	default:
		panic(fmt.Sprintf("config: no decoder for %s", v.Type()))
	}
}

func (d *decoder) expect(n *yaml.Node, kind yaml.Kind, path, what string) bool {
	if n.Kind == kind {
		return true
	}
	d.at(path, "expected %s, got %s", what, describe(n))
	return false
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) {
	if !d.expect(n, yaml.ScalarNode, path, "a duration") {
		return
	}
	dur, err := ParseDuration(n.Value)
	if err != nil {
		d.at(path, "%v", err)
		return
	}
	v.SetInt(int64(dur))
}

// step reads a canary step: a bare integer is the weight step {weight: N},
// anything else is a step object.
func (d *decoder) step(n *yaml.Node, v reflect.Value, path string) {
	switch {
	case n.Kind == yaml.MappingNode:
		d.mapping(n, v, path)
	case n.Kind == yaml.ScalarNode && n.Tag == "!!int":
		w, err := strconv.Atoi(n.Value)
		if err != nil {
			d.at(path, "expected a weight such as 25, got %q", n.Value)
			return
		}
		// The shorthand is the weight key too, for origins and messages.
		d.positions[joinPath(path, "weight")] = Pos{n.Line, n.Column}
		v.Set(reflect.ValueOf(Step{Weight: w}))
	default:
		d.at(path, "expected a weight such as 25 or a step such as {pause: 5m}, got %s", describe(n))
	}
}

// pause reads a pause step's value: a positive duration, or an empty
// mapping for a pause that waits for approval.
func (d *decoder) pause(n *yaml.Node, v reflect.Value, path string) {
	const want = "a duration such as 5m, or {} to wait for approval"
	switch n.Kind {
	case yaml.ScalarNode:
		dur, err := ParseDuration(n.Value)
		if err != nil {
			d.at(path, "expected %s, got %q", want, n.Value)
			return
		}
		if dur <= 0 {
			d.at(path, "must be positive, got %s; write pause: {} to wait for approval", dur)
			return
		}
		v.Set(reflect.ValueOf(Pause{Duration: dur}))
	case yaml.MappingNode:
		if len(n.Content) > 0 {
			key := n.Content[0]
			keyPath := joinPath(path, key.Value)
			d.positions[keyPath] = Pos{key.Line, key.Column}
			d.at(keyPath, "unknown key: a pause is %s", want)
		}
	default:
		d.at(path, "expected %s, got %s", want, describe(n))
	}
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if !d.expect(n, yaml.MappingNode, path, "a mapping") {
		return
	}
	fields := jsonFields(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		// Every key counts, reported or not: unknown keys under an alias
		// expand as much as known ones.
		if !d.visit(key) {
			return
		}
		keyPath := joinPath(path, key.Value)
		if seen[key.Value] {
			d.positions[keyPath] = Pos{key.Line, key.Column}
			d.at(keyPath, "key is repeated")
			continue
		}
		seen[key.Value] = true
		idx, ok := fields[key.Value]
		if !ok {
			d.positions[keyPath] = Pos{key.Line, key.Column}
			d.at(keyPath, "unknown key%s", suggest(key.Value, fields))
			continue
		}
		d.decode(val, v.Field(idx), keyPath)
	}
}

func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string) {
	if !d.expect(n, yaml.SequenceNode, path, "a list") {
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		if d.overrun != nil {
			return
		}
		d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
	}
	v.Set(s)
}

// stringMap reads a map of strings; any scalar is taken as written, since
// `PORT: 8080` in an env block means the string "8080".
func (d *decoder) stringMap(n *yaml.Node, v reflect.Value, path string) {
	if !d.expect(n, yaml.MappingNode, path, "a mapping") {
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		if !d.visit(val) {
			return
		}
		keyPath := joinPath(path, key.Value)
		d.positions[keyPath] = Pos{val.Line, val.Column}
		if m.MapIndex(reflect.ValueOf(key.Value)).IsValid() {
			d.at(keyPath, "key is repeated")
			continue
		}
		if !d.expect(val, yaml.ScalarNode, keyPath, "a string") {
			continue
		}
		m.SetMapIndex(reflect.ValueOf(key.Value), reflect.ValueOf(val.Value))
	}
	v.Set(m)
}

// structMap reads a map whose values are mappings, such as a match's
// headers. An entry's position is its key's, as a key is what a later
// problem with the entry is about.
func (d *decoder) structMap(n *yaml.Node, v reflect.Value, path string) {
	if !d.expect(n, yaml.MappingNode, path, "a mapping") {
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		if d.overrun != nil {
			return
		}
		key, val := n.Content[i], n.Content[i+1]
		keyPath := joinPath(path, key.Value)
		if m.MapIndex(reflect.ValueOf(key.Value)).IsValid() {
			d.positions[keyPath] = Pos{key.Line, key.Column}
			d.at(keyPath, "key is repeated")
			continue
		}
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, elem, keyPath)
		d.positions[keyPath] = Pos{key.Line, key.Column}
		m.SetMapIndex(reflect.ValueOf(key.Value), elem)
	}
	v.Set(m)
}

// jsonFields maps the json key of each field of t to its index.
func jsonFields(t reflect.Type) map[string]int {
	fields := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		fields[jsonName(t.Field(i))] = i
	}
	return fields
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return strconv.Quote(n.Value)
	}
}

// suggest names the closest known key for a misspelt one.
func suggest(key string, fields map[string]int) string {
	best, bestDist := "", 3
	for name := range fields {
		if d := editDistance(strings.ToLower(key), strings.ToLower(name)); d < bestDist || (d == bestDist && name < best) {
			best, bestDist = name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
