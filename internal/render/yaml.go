package render

import (
	"bytes"
	"fmt"
	"runtime"
	"strconv"
	"sync"

	yamlv3 "gopkg.in/yaml.v3"
)

// decodeObject parses one YAML document into the JSON-typed map that
// unstructured objects hold (int64, float64, bool, string, nil). Going
// through yaml.Node keeps scalars exact (a timestamp stays the string it was
// written as) and is one parse rather than sigs.k8s.io/yaml's YAML -> JSON ->
// map; rendering is dominated by YAML work.
func decodeObject(data []byte) (map[string]any, error) {
	var doc yamlv3.Node
	if err := yamlv3.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	v, err := nodeValue(doc.Content[0])
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("line %d: a Kubernetes object must be a mapping", doc.Content[0].Line)
	}
	return m, nil
}

func nodeValue(n *yamlv3.Node) (any, error) {
	switch n.Kind {
	case yamlv3.AliasNode:
		return nodeValue(n.Alias)
	case yamlv3.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			v, err := nodeValue(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[n.Content[i].Value] = v
		}
		return m, nil
	case yamlv3.SequenceNode:
		s := make([]any, len(n.Content))
		for i, item := range n.Content {
			v, err := nodeValue(item)
			if err != nil {
				return nil, err
			}
			s[i] = v
		}
		return s, nil
	case yamlv3.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, nil
		case "!!bool":
			return strconv.ParseBool(n.Value)
		case "!!int":
			var i int64
			if err := n.Decode(&i); err != nil {
				return nil, fmt.Errorf("line %d: %w", n.Line, err)
			}
			return i, nil
		case "!!float":
			var f float64
			if err := n.Decode(&f); err != nil {
				return nil, fmt.Errorf("line %d: %w", n.Line, err)
			}
			return f, nil
		default:
			return n.Value, nil
		}
	}
	return nil, fmt.Errorf("line %d: unsupported YAML node", n.Line)
}

// encodeObjects writes objects as one YAML stream, keys sorted. Objects
// are encoded side by side: encoding is a quarter of a render.
func encodeObjects(objs []Object) ([]byte, error) {
	docs := make([][]byte, len(objs))
	errs := make([]error, len(objs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(objs)) {
		wg.Go(func() {
			for i := range next {
				docs[i], errs[i] = encodeObject(objs[i].Object)
			}
		})
	}
	for i := range objs {
		next <- i
	}
	close(next)
	wg.Wait()
	var b bytes.Buffer
	for i, doc := range docs {
		if errs[i] != nil {
			return nil, fmt.Errorf("%s %s: %w", objs[i].GetKind(), objs[i].GetName(), errs[i])
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(doc)
	}
	return b.Bytes(), nil
}

func encodeObject(obj map[string]any) ([]byte, error) {
	var b bytes.Buffer
	enc := yamlv3.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(obj); err != nil {
		return nil, err
	}
	err := enc.Close()
	return b.Bytes(), err
}
