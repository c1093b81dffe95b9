package cli

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/iostreams"
)

// The docs cannot drift from the code: every msctl command line they show
// names commands and flags that exist, and every key of the README's
// project-file table is a key of the schema.

// docFiles are the README and docs/*.md, by path from the repository root.
func docFiles(t *testing.T) map[string]string {
	t.Helper()
	paths, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range append(paths, "../../README.md") {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimPrefix(p, "../../")] = string(b)
	}
	return out
}

// commandLines are the msctl command lines of a document: its inline code
// and the lines of its code blocks that start with msctl, continuation
// lines joined.
func commandLines(doc string) []string {
	var out []string
	for _, m := range regexp.MustCompile("`(msctl [^`]+)`").FindAllStringSubmatch(doc, -1) {
		out = append(out, m[1])
	}
	// A row of the commands table: the flags its description names are
	// the command's.
	row := regexp.MustCompile("(?m)^\\| `(msctl [^`]+)` \\|(.*)\\|$")
	for _, m := range row.FindAllStringSubmatch(doc, -1) {
		for _, f := range regexp.MustCompile("`(--[a-z-]+)").FindAllStringSubmatch(m[2], -1) {
			out = append(out, m[1]+" "+f[1])
		}
	}
	joined := strings.ReplaceAll(doc, "\\\n", " ")
	fenced := false
	for _, line := range strings.Split(joined, "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
			continue
		}
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "run:"))
		line = strings.TrimSpace(strings.TrimPrefix(line, "- "))
		if fenced && strings.HasPrefix(line, "msctl ") {
			out = append(out, line)
		}
	}
	return out
}

// placeholder is a word of a synopsis that stands for a value: SERVICE,
// [--tag T, REF...], a|b.
var placeholder = regexp.MustCompile(`^[\[\]{}|.A-Z0-9_=<>-]+$|[|\[\]]`)

func TestDocumentedCommandLinesExist(t *testing.T) {
	streams, _, _, _ := iostreams.Test()
	root := NewRootCmd(newFactory(streams))
	checked := 0
	for name, doc := range docFiles(t) {
		for _, line := range commandLines(doc) {
			words := strings.Fields(strings.NewReplacer("[", " ", "]", " ", "|", " ", "\\", " ").Replace(line))[1:]
			// Global flags may come first: --kubeconfig PATH deploy ...
			for len(words) > 1 && strings.HasPrefix(words[0], "--") && !strings.Contains(words[0], "=") &&
				root.PersistentFlags().Lookup(words[0][2:]) != nil && root.PersistentFlags().Lookup(words[0][2:]).NoOptDefVal == "" {
				words = words[2:]
			}
			var path []string
			for _, w := range words {
				if strings.HasPrefix(w, "-") || placeholder.MatchString(w) || strings.ContainsAny(w, `"'$/:.=`) {
					break
				}
				path = append(path, w)
			}
			cmd, rest, err := root.Find(path)
			if err != nil || (len(rest) > 0 && cmd.HasSubCommands()) {
				t.Errorf("%s: `%s`: %v is not a command (%v)", name, line, path, err)
				continue
			}
			for _, w := range words {
				flag := strings.TrimLeft(strings.SplitN(w, "=", 2)[0], "-")
				if !strings.HasPrefix(w, "-") || w == "-" || flag == "" {
					continue
				}
				if !hasFlag(cmd, flag, strings.HasPrefix(w, "--")) {
					t.Errorf("%s: `%s`: %s has no flag %s", name, line, cmd.CommandPath(), w)
				}
			}
			checked++
		}
	}
	if checked < 50 {
		t.Fatalf("checked %d command lines: the docs show more than that", checked)
	}
}

func hasFlag(cmd *cobra.Command, name string, long bool) bool {
	if name == "help" || name == "h" {
		return true // cobra adds it to every command when it runs
	}
	var f *pflag.Flag
	for c := cmd; c != nil && f == nil; c = c.Parent() {
		if long {
			f = c.Flags().Lookup(name)
			if f == nil {
				f = c.PersistentFlags().Lookup(name)
			}
		} else {
			f = c.Flags().ShorthandLookup(name)
			if f == nil {
				f = c.PersistentFlags().ShorthandLookup(name)
			}
		}
	}
	return f != nil
}

func TestTheReadmesProjectFileKeysExist(t *testing.T) {
	readme := docFiles(t)["README.md"]
	start := strings.Index(readme, "| key | default | meaning |")
	end := strings.Index(readme[start:], "\n\n")
	if start < 0 || end < 0 {
		t.Fatal("README has no project-file table (| key | default | meaning |)")
	}
	keys := 0
	for _, row := range strings.Split(readme[start:start+end], "\n") {
		if !strings.HasPrefix(row, "| `") {
			continue
		}
		cell := strings.SplitN(row, "|", 3)[1]
		for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(cell, -1) {
			for _, key := range expand(m[1]) {
				keys++
				if !schemaHas(reflect.TypeFor[config.Project](), strings.Split(key, ".")) {
					t.Errorf("README's project-file table: %s is not a key of msctl.yaml", key)
				}
			}
		}
	}
	if keys < 40 {
		t.Fatalf("read %d keys from the table: it has more", keys)
	}
}

// expand turns a documented key with alternatives (ports.http/grpc/admin,
// resources.requests/limits.cpu/memory) into the keys it stands for.
func expand(key string) []string {
	out := []string{""}
	for i, seg := range strings.Split(strings.ReplaceAll(key, "[]", ""), ".") {
		var next []string
		for _, prefix := range out {
			for _, alt := range strings.Split(seg, "/") {
				if i > 0 {
					alt = prefix + "." + alt
				}
				next = append(next, alt)
			}
		}
		out = next
	}
	return out
}

// schemaHas reports whether the path of JSON names leads somewhere in t.
func schemaHas(t reflect.Type, path []string) bool {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if len(path) == 0 {
		return true
	}
	if t.Kind() == reflect.Map {
		return true
	}
	if t.Kind() != reflect.Struct {
		return false
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name := strings.Split(f.Tag.Get("json"), ",")[0]
		if f.Anonymous && name == "" {
			if schemaHas(f.Type, path) {
				return true
			}
			continue
		}
		if name == path[0] {
			return schemaHas(f.Type, path[1:])
		}
	}
	return false
}
