package build

import (
	"maps"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// imageInfo is what the OCI labels and annotations say of an image.
type imageInfo struct {
	service string
	src     Source
}

func (i imageInfo) annotations() map[string]string {
	a := map[string]string{
		"org.opencontainers.image.title":   i.service,
		"org.opencontainers.image.version": i.src.Version,
		"org.opencontainers.image.created": i.src.Epoch.Format(time.RFC3339),
	}
	if i.src.Commit != "" {
		a["org.opencontainers.image.revision"] = i.src.Commit
	}
	if i.src.URL != "" {
		a["org.opencontainers.image.source"] = i.src.URL
	}
	return a
}

// platformImage assembles one platform's image from the shared base layer
// and the service's app layer.
func platformImage(info imageInfo, p Platform, base, app v1.Layer) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	created := v1.Time{Time: info.src.Epoch}
	img, err := mutate.ConfigFile(img, &v1.ConfigFile{
		OS: p.OS, Architecture: p.Arch, Created: created,
		RootFS: v1.RootFS{Type: "layers"},
		Config: v1.Config{
			Entrypoint: []string{binDir + "/" + info.service},
			User:       "65532:65532",
			WorkingDir: home,
			Env: []string{
				"PATH=" + binDir + ":/usr/bin:/bin",
				"HOME=" + home,
				"SSL_CERT_FILE=" + caFile,
			},
			Labels: info.annotations(),
		},
	})
	if err != nil {
		return nil, err
	}
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, MediaType: types.OCILayer, History: v1.History{Created: created, CreatedBy: "msctl build: base (user 65532, /tmp, CA roots)"}},
		mutate.Addendum{Layer: app, MediaType: types.OCILayer, History: v1.History{Created: created, CreatedBy: "msctl build: " + info.service}},
	)
	if err != nil {
		return nil, err
	}
	return mutate.Annotations(img, info.annotations()).(v1.Image), nil
}

// imageIndex puts the platforms' images under one index, each entry with
// its platform, so a node pulls the one it runs.
func imageIndex(info imageInfo, images map[Platform]v1.Image, order []Platform) v1.ImageIndex {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range order {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        images[p],
			Descriptor: v1.Descriptor{MediaType: types.OCIManifestSchema1, Platform: &v1.Platform{OS: p.OS, Architecture: p.Arch}},
		})
	}
	return mutate.Annotations(idx, maps.Clone(info.annotations())).(v1.ImageIndex)
}
