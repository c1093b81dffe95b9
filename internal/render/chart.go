package render

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/errkind"
	"github.com/msctl/msctl/internal/imageref"
	"github.com/msctl/msctl/manifests"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"helm.sh/helm/v4/pkg/chart/common"
	chartutil "helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/loader/archive"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	v2util "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/engine"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// ServiceChart returns the embedded service chart, loaded once per process.
func ServiceChart() (*chart.Chart, error) { return serviceChart() }

var serviceChart = sync.OnceValues(func() (*chart.Chart, error) {
	var files []*archive.BufferedFile
	err := fs.WalkDir(manifests.Charts, manifests.ServiceChart, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(manifests.Charts, p)
		if err != nil {
			return err
		}
		files = append(files, &archive.BufferedFile{Name: strings.TrimPrefix(p, manifests.ServiceChart+"/"), Data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the embedded chart: %w", err)
	}
	return loader.LoadFiles(files)
})

// ChartValues are the chart values msctl derives for a service from the
// project file, with the service's image at imageTag; deploy hands the same
// values to Helm.
func ChartValues(p *config.Project, s *config.Service, imageTag string) map[string]any {
	return chartValues(p, s, ServiceImage(p, s, imageTag))
}

func chartValues(p *config.Project, s *config.Service, img imageref.Ref) map[string]any {
	// Keys without a value are left to the chart's defaults, and a release
	// deployed by tag keeps the values it had before digests existed.
	image := map[string]any{"repository": img.Repository}
	if img.Tag != "" {
		image["tag"] = img.Tag
	}
	if img.Digest != "" {
		image["digest"] = img.Digest
	}
	values := map[string]any{
		"name":     s.Name,
		"project":  p.Name,
		"track":    "stable",
		"image":    image,
		"replicas": s.Replicas,
		"ports": map[string]any{
			"http":  s.Ports.HTTP,
			"grpc":  s.Ports.GRPC,
			"admin": s.Ports.Admin,
		},
		"resources": map[string]any{
			"requests": map[string]any{"cpu": s.Resources.Requests.CPU, "memory": s.Resources.Requests.Memory},
			"limits":   map[string]any{"cpu": s.Resources.Limits.CPU, "memory": s.Resources.Limits.Memory},
		},
		"env":        serviceEnv(p, s),
		"secretName": s.Secret,
		"callers":    toAnySlice(Callers(p, s.Name)),
	}
	if k := p.KeysFor(s); k != nil {
		files := map[string]any{}
		for env, file := range k.Files() {
			files[env] = file
		}
		values["keys"] = map[string]any{"secretName": k.Secret, "files": files}
	}
	if ns := p.Prometheus.Namespace(); ns != "" {
		values["networkPolicy"] = map[string]any{"prometheus": map[string]any{"namespace": ns}}
	}
	if p.Prometheus.Scrape == config.ScrapeMTLS {
		values["monitoring"] = map[string]any{"mtls": true}
	}
	return values
}

// serviceEnv is the service's env from the project file over the variables
// msctl derives for it: the JWT issuer and audiences of auth, so the service
// accepts the tokens the mesh accepts. The file's own values win.
func serviceEnv(p *config.Project, s *config.Service) map[string]any {
	env := map[string]any{}
	if p.Auth.Issuer != "" {
		env["AUTH_JWT_ISSUER"] = p.Auth.Issuer
		// Istio accepts a token that names any one of the audiences; the
		// kit reads the same list, comma-separated.
		if len(p.Auth.Audiences) > 0 {
			env["AUTH_JWT_AUDIENCE"] = strings.Join(p.Auth.Audiences, ",")
		}
	}
	for k, v := range s.Env {
		env[k] = v
	}
	return env
}

// ServiceValues are ChartValues with overlays applied in order (-f files,
// then --set), each winning over what came before, as in helm.
func ServiceValues(p *config.Project, s *config.Service, imageTag string, overlays []map[string]any) map[string]any {
	return serviceValues(p, s, ServiceImage(p, s, imageTag), overlays)
}

func serviceValues(p *config.Project, s *config.Service, img imageref.Ref, overlays []map[string]any) map[string]any {
	values := chartValues(p, s, img)
	for _, overlay := range overlays {
		values = chartutil.MergeTables(copyTree(overlay), values)
	}
	return values
}

// ServiceValuesAt are ServiceValues for an image given as a reference, which
// may carry a digest.
func ServiceValuesAt(p *config.Project, s *config.Service, img imageref.Ref, overlays []map[string]any) map[string]any {
	return serviceValues(p, s, img, overlays)
}

// ServiceImage is a service's image at tag: the service's image key, or
// <registry>/<name>.
func ServiceImage(p *config.Project, s *config.Service, tag string) imageref.Ref {
	repo := s.Image
	if repo == "" {
		repo = p.Registry + "/" + s.Name
	}
	return imageref.Ref{Repository: repo, Tag: tag}
}

// ImageFromValues reads the image back from a release's chart values, as
// chartValues wrote them.
func ImageFromValues(values map[string]any) imageref.Ref {
	img, _ := values["image"].(map[string]any)
	var r imageref.Ref
	r.Repository, _ = img["repository"].(string)
	r.Tag, _ = img["tag"].(string)
	r.Digest, _ = img["digest"].(string)
	return r
}

// Callers lists, sorted, the services that declare they call name.
func Callers(p *config.Project, name string) []string {
	var out []string
	for _, s := range p.Services {
		if slices.Contains(s.Calls, name) {
			out = append(out, s.Name)
		}
	}
	slices.Sort(out)
	return out
}

func capabilities(kubeVersion string, apiVersions []string) (*common.Capabilities, error) {
	caps := common.DefaultCapabilities.Copy()
	if kubeVersion != "" {
		kv, err := common.ParseKubeVersion(kubeVersion)
		if err != nil {
			return nil, errkind.BadInputf("--kube-version %q: %w", kubeVersion, err)
		}
		caps.KubeVersion = *kv
	}
	caps.APIVersions = append(caps.APIVersions, apiVersions...)
	return caps, nil
}

// renderChart renders the service chart for one service exactly as
// `helm template` would, and parses each manifest into an object.
func renderChart(p *config.Project, s *config.Service, opts Options, caps *common.Capabilities) ([]Object, error) {
	ch, err := ServiceChart()
	if err != nil {
		return nil, err
	}
	if c := ch.Metadata.KubeVersion; c != "" && !v2util.IsCompatibleRange(c, caps.KubeVersion.String()) {
		return nil, errkind.BadInputf("the service chart needs Kubernetes %s, not %s", c, caps.KubeVersion.Version)
	}
	values := serviceValues(p, s, opts.Image(p, s), opts.Values)
	if err := validateValues(ch, values); err != nil {
		return nil, errkind.BadInputf("%s: chart values rejected: %s", s.Name, schemaViolations(err))
	}
	// Validated above against the schema compiled once; Helm would compile
	// it again for every service.
	top, err := chartutil.ToRenderValuesWithSchemaValidation(ch, values, common.ReleaseOptions{
		Name: s.Name, Namespace: p.Namespace, Revision: 1, IsInstall: true,
	}, caps, true)
	if err != nil {
		return nil, errkind.BadInputf("%s: chart values rejected: %s", s.Name, oneLine(err.Error()))
	}
	files, err := engine.Render(ch, top)
	if err != nil {
		return nil, fmt.Errorf("%s: rendering the chart: %s", s.Name, oneLine(err.Error()))
	}
	return manifestObjects(s.Name, files)
}

// manifestObjects parses the rendered templates into objects in Helm's
// install order: kinds as releaseutil.InstallOrder lists them, other kinds
// after them by name, and file order within a kind. Helm's SortManifests
// would do the same but parses every document a second time.
func manifestObjects(service string, files map[string]string) ([]Object, error) {
	names := make([]string, 0, len(files))
	for name := range files {
		if !strings.HasPrefix(path.Base(name), "_") && !strings.HasSuffix(name, "NOTES.txt") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	var objs []Object
	for _, name := range names {
		docs := releaseutil.SplitManifests(files[name])
		for i := range len(docs) {
			obj, err := decodeObject([]byte(docs[fmt.Sprintf("manifest-%d", i)]))
			if err != nil {
				return nil, fmt.Errorf("%s: %s is not valid YAML: %w", service, path.Base(name), err)
			}
			if obj == nil {
				continue
			}
			objs = append(objs, Object{Service: service, Source: SourceChart, Unstructured: &unstructured.Unstructured{Object: obj}})
		}
	}
	rank := func(kind string) int {
		if i := slices.Index(releaseutil.InstallOrder, kind); i >= 0 {
			return i
		}
		return len(releaseutil.InstallOrder)
	}
	slices.SortStableFunc(objs, func(a, b Object) int {
		if c := cmp.Compare(rank(a.GetKind()), rank(b.GetKind())); c != 0 {
			return c
		}
		return strings.Compare(a.GetKind(), b.GetKind())
	})
	return objs, nil
}

// valuesSchema is the chart's values.schema.json, compiled once.
var valuesSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	ch, err := ServiceChart()
	if err != nil {
		return nil, err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(ch.Schema))
	if err != nil {
		return nil, fmt.Errorf("the chart's values.schema.json: %w", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("file:///values.schema.json", doc); err != nil {
		return nil, err
	}
	return c.Compile("file:///values.schema.json")
})

// validateValues checks values, with the chart's defaults under them, as
// Helm's own schema validation does.
func validateValues(ch *chart.Chart, values map[string]any) error {
	sch, err := valuesSchema()
	if err != nil {
		return err
	}
	merged, err := chartutil.CoalesceValues(ch, values)
	if err != nil {
		return err
	}
	// The validator wants JSON types; values from YAML and --set may hold
	// other integer types.
	js, err := json.Marshal(merged.AsMap())
	if err != nil {
		return err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		return err
	}
	return sch.Validate(doc)
}

// schemaViolations keeps the "at '/path': reason" lines of Helm's schema
// error, which otherwise spans several lines of preamble.
func schemaViolations(err error) string {
	var at []string
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimPrefix(strings.TrimSpace(line), "- ")
		if strings.HasPrefix(line, "at '") {
			at = append(at, line)
		}
	}
	if len(at) == 0 {
		return oneLine(err.Error())
	}
	return strings.Join(at, "; ")
}

// oneLine folds Helm's multi-line messages into one line.
func oneLine(s string) string {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' })
	for i := range fields {
		fields[i] = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(fields[i]), "- "))
	}
	return strings.Join(slices.DeleteFunc(fields, func(f string) bool { return f == "" }), "; ")
}

func toAnySlice(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// copyTree deep-copies a values tree, because MergeTables writes into its
// first argument and one overlay serves every service.
func copyTree(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			v = copyTree(sub)
		}
		out[k] = v
	}
	return out
}
