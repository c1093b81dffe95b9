package generate

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/msctl/msctl/internal/config"
)

// ProjectEntry is a generated service's entry in msctl.yaml.
type ProjectEntry struct {
	Name, Path, Route, Secret string
}

// Entry is the entry for service name with its source at path (relative
// to the project file): gateway route /api/v1/<name>, and DATABASE_URL
// from the Secret <name>-db like the bundled services.
func Entry(name, path string) ProjectEntry {
	return ProjectEntry{Name: name, Path: path, Route: "/api/v1/" + name, Secret: name + "-db"}
}

// lines are the entry as a YAML mapping at indent 0; both ways of adding
// it below splice in these same lines.
func (e ProjectEntry) lines() []string {
	return []string{
		"name: " + scalar(e.Name),
		"path: " + scalar(e.Path),
		"routes: [" + scalar(e.Route) + "]",
		"secret: " + scalar(e.Secret),
		"env:",
		"  LOG_LEVEL: info",
	}
}

var plainScalar = regexp.MustCompile(`^[A-Za-z0-9_/][A-Za-z0-9_./-]*$`)

// scalar quotes s unless it is safe as a plain YAML scalar.
func scalar(s string) string {
	if plainScalar.MatchString(s) {
		return s
	}
	return strconv.Quote(s)
}

// AddToProject returns the project file data (read from name, which is
// used in messages) with e appended to services. When services is the
// file's last key and a block sequence, the entry is appended as text in
// the file's own indentation, so comments and layout survive untouched;
// otherwise the document is re-encoded through yaml.v3 nodes (comments
// kept, layout normalised to two-space indents). Either way the result must
// pass config.Parse with the new service in it, or nothing is returned.
func AddToProject(name string, data []byte, e ProjectEntry) ([]byte, error) {
	if out, ok := appendText(data, e); ok && check(name, out, e) == nil {
		return out, nil
	}
	out, err := appendNode(data, e)
	if err != nil {
		return nil, err
	}
	if err := check(name, out, e); err != nil {
		return nil, err
	}
	return out, nil
}

func check(name string, data []byte, e ProjectEntry) error {
	loaded, err := config.Parse(name, data, nil)
	if err != nil {
		return err
	}
	if s := loaded.Project.Service(e.Name); s == nil || s.Path != e.Path {
		return fmt.Errorf("generate: adding %s to %s did not give the expected service entry", e.Name, name)
	}
	return nil
}

// servicesNode returns the document's root mapping and the index of the
// services key in it (-1 when absent).
func servicesNode(doc *yaml.Node) (*yaml.Node, int, error) {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, 0, errors.New("generate: the project file is not a YAML mapping")
	}
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "services" {
			return root, i, nil
		}
	}
	return root, -1, nil
}

// appendText appends e after the last service as text. ok is false when
// the file's shape makes that unsafe.
func appendText(data []byte, e ProjectEntry) ([]byte, bool) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, false
	}
	root, i, err := servicesNode(&doc)
	if err != nil || i < 0 || i != len(root.Content)-2 {
		return nil, false
	}
	seq := root.Content[i+1]
	if seq.Kind != yaml.SequenceNode || seq.Style&yaml.FlowStyle != 0 || len(seq.Content) == 0 {
		return nil, false
	}
	lines := strings.Split(string(data), "\n")
	first := seq.Content[0]
	if first.Kind != yaml.MappingNode || first.Line < 1 || first.Line > len(lines) {
		return nil, false
	}
	// "  - name: user": the mapping starts at "name", its dash is before it.
	line, col := lines[first.Line-1], first.Column-1
	if col > len(line) {
		return nil, false
	}
	dash := strings.LastIndex(line[:col], "-")
	if dash < 0 || strings.TrimSpace(line[:dash]) != "" || strings.TrimSpace(line[dash+1:col]) != "" {
		return nil, false
	}
	var b bytes.Buffer
	b.Write(data)
	if len(data) > 0 && data[len(data)-1] != '\n' {
		b.WriteByte('\n')
	}
	if blankBetween(seq, lines) {
		b.WriteByte('\n')
	}
	for j, l := range e.lines() {
		if j == 0 {
			b.WriteString(line[:dash+1] + strings.Repeat(" ", col-dash-1) + l + "\n")
		} else {
			b.WriteString(strings.Repeat(" ", col) + l + "\n")
		}
	}
	return b.Bytes(), true
}

// blankBetween reports whether the file separates services with a blank
// line; with a single service it assumes so, like the bundled msctl.yaml.
func blankBetween(seq *yaml.Node, lines []string) bool {
	if len(seq.Content) < 2 {
		return true
	}
	at := seq.Content[1].Line - 2
	return at >= 0 && at < len(lines) && strings.TrimSpace(lines[at]) == ""
}

// appendNode adds e through a yaml.v3 node round-trip.
func appendNode(data []byte, e ProjectEntry) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("generate: reading the project file: %w", err)
	}
	root, i, err := servicesNode(&doc)
	if err != nil {
		return nil, err
	}
	if i < 0 {
		root.Content = append(root.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "services"},
			&yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"})
		i = len(root.Content) - 2
	}
	seq := root.Content[i+1]
	if seq.Kind != yaml.SequenceNode {
		return nil, errors.New("generate: services in the project file is not a list")
	}
	var entry yaml.Node
	if err := yaml.Unmarshal([]byte(strings.Join(e.lines(), "\n")), &entry); err != nil {
		return nil, fmt.Errorf("generate: service entry: %w", err)
	}
	item := entry.Content[0]
	if seq.Style&yaml.FlowStyle != 0 {
		item.Style = yaml.FlowStyle
	}
	seq.Content = append(seq.Content, item)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("generate: writing the project file: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
