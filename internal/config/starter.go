package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"text/template"

	"github.com/msctl/msctl/internal/atomicfile"

	"k8s.io/apimachinery/pkg/util/validation"
)

//go:embed starter.yaml.tmpl
var starterTemplate string

var starter = template.Must(template.New("msctl.yaml").Parse(starterTemplate))

// Starter returns a commented starter project file for a project name.
func Starter(name string) ([]byte, error) {
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
		return nil, &Error{Problems: []Problem{{Source: "--name", Message: fmt.Sprintf("%q is not a valid project name: lower-case letters, digits and '-', at most 63 characters", name)}}}
	}
	var b bytes.Buffer
	if err := starter.Execute(&b, struct{ Name string }{name}); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// WriteFile writes data to path atomically (a temporary file renamed into
// place), so an interrupted write never leaves half a project file. It
// refuses to replace an existing file unless force is set.
func WriteFile(path string, data []byte, force bool) error {
	if _, err := os.Stat(path); err == nil && !force {
		return &Error{Problems: []Problem{{Source: path, Message: "already exists; pass --force to overwrite it"}}}
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return &Error{Problems: []Problem{{Source: path, Message: describeOpenError(err)}}}
	}
	if err := atomicfile.Write(path, data, 0o644); err != nil {
		return &Error{Problems: []Problem{{Source: path, Message: "cannot write: " + describeOpenError(err)}}}
	}
	return nil
}
