package build

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// SBOMMediaType is the artifact type of the SBOM attached to each image.
const SBOMMediaType = "application/spdx+json"

// linked is what a binary's embedded build information says it is made of.
type linked struct {
	Main      module   `json:"main"`
	GoVersion string   `json:"goVersion"`
	Deps      []module `json:"deps"`
}

// spdx writes an SPDX 2.3 document of the modules linked into a service's
// binaries (the union over its platforms), for the image with digest
// subject.
func spdx(service string, subject v1.Hash, created time.Time, version string, bins []linked) ([]byte, error) {
	type ref struct {
		Category string `json:"referenceCategory"`
		Type     string `json:"referenceType"`
		Locator  string `json:"referenceLocator"`
	}
	type pkg struct {
		Name             string `json:"name"`
		SPDXID           string `json:"SPDXID"`
		VersionInfo      string `json:"versionInfo,omitempty"`
		DownloadLocation string `json:"downloadLocation"`
		FilesAnalyzed    bool   `json:"filesAnalyzed"`
		ExternalRefs     []ref  `json:"externalRefs,omitempty"`
	}
	type rel struct {
		Element string `json:"spdxElementId"`
		Type    string `json:"relationshipType"`
		Related string `json:"relatedSpdxElement"`
	}
	purl := func(path, v string) []ref {
		return []ref{{"PACKAGE-MANAGER", "purl", "pkg:golang/" + path + "@" + v}}
	}
	mainPath := bins[0].Main.Path
	pkgs := []pkg{{Name: mainPath, SPDXID: "SPDXRef-Package-main", VersionInfo: version, DownloadLocation: "NOASSERTION", ExternalRefs: purl(mainPath, version)}}
	rels := []rel{{"SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Package-main"}}
	var deps []module
	goVersions := map[string]bool{}
	for _, b := range bins {
		deps = append(deps, b.Deps...)
		goVersions[b.GoVersion] = true
	}
	for v := range goVersions {
		deps = append(deps, module{Path: "stdlib", Version: strings.TrimPrefix(v, "go")})
	}
	slices.SortFunc(deps, func(a, b module) int { return cmp.Or(cmp.Compare(a.Path, b.Path), cmp.Compare(a.Version, b.Version)) })
	deps = slices.Compact(deps)
	for i, d := range deps {
		id := fmt.Sprintf("SPDXRef-Package-%d", i+1)
		pkgs = append(pkgs, pkg{Name: d.Path, SPDXID: id, VersionInfo: d.Version, DownloadLocation: "NOASSERTION", ExternalRefs: purl(d.Path, d.Version)})
		rels = append(rels, rel{"SPDXRef-Package-main", "DEPENDS_ON", id})
	}
	return json.MarshalIndent(map[string]any{
		"spdxVersion":       "SPDX-2.3",
		"dataLicense":       "CC0-1.0",
		"SPDXID":            "SPDXRef-DOCUMENT",
		"name":              service,
		"documentNamespace": "https://msctl.dev/spdx/" + service + "/" + subject.String(),
		"creationInfo":      map[string]any{"created": created.UTC().Format(time.RFC3339), "creators": []string{"Tool: msctl"}},
		"packages":          pkgs,
		"relationships":     rels,
	}, "", "  ")
}

// emptyConfig is the OCI empty descriptor's content: an artifact that is
// not a runnable image has no configuration.
var emptyConfig = []byte("{}")

// artifact is an OCI 1.1 artifact manifest with one layer, referring to
// its subject; registries without the referrers API find it through the
// fallback tag that go-containerregistry maintains.
type artifact struct {
	manifest []byte
	layer    v1.Layer
}

func newArtifact(artifactType string, content []byte, subject v1.Descriptor) (v1.Image, error) {
	layer := static.NewLayer(content, types.MediaType(artifactType))
	digest, _ := layer.Digest()
	cfgDigest, cfgSize, _ := v1.SHA256(strings.NewReader(string(emptyConfig)))
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  artifactType,
		Config:        v1.Descriptor{MediaType: "application/vnd.oci.empty.v1+json", Digest: cfgDigest, Size: cfgSize},
		Layers:        []v1.Descriptor{{MediaType: types.MediaType(artifactType), Digest: digest, Size: int64(len(content))}},
		Subject:       &subject,
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&artifact{manifest: raw, layer: layer})
}

func (a *artifact) RawConfigFile() ([]byte, error)      { return emptyConfig, nil }
func (a *artifact) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (a *artifact) RawManifest() ([]byte, error)        { return a.manifest, nil }
func (a *artifact) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if d, _ := a.layer.Digest(); d == h {
		return a.layer, nil
	}
	return nil, fmt.Errorf("artifact has no blob %s", h)
}
