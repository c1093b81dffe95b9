package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// The user every image runs as: numeric, because Kubernetes cannot check
// runAsNonRoot against a user name.
const (
	uid      = 65532
	userName = "nonroot"
	home     = "/home/nonroot"
	caFile   = "/etc/ssl/certs/ca-certificates.crt"
	binDir   = "/usr/local/bin"
)

// entry is one file or directory of a layer.
type entry struct {
	name  string
	mode  int64
	uid   int
	data  []byte
	file  string // read from this path instead of data
	isDir bool
}

// writeTar writes entries in the order given with fixed owners, modes and
// times, so the same entries always make the same bytes.
func writeTar(w io.Writer, entries []entry, mtime time.Time) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		hdr := &tar.Header{
			Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.uid, ModTime: mtime,
			Format: tar.FormatPAX, Typeflag: tar.TypeReg,
		}
		var body io.Reader
		switch {
		case e.isDir:
			hdr.Typeflag = tar.TypeDir
		case e.file != "":
			f, err := os.Open(e.file)
			if err != nil {
				return err
			}
			defer f.Close()
			st, err := f.Stat()
			if err != nil {
				return err
			}
			hdr.Size, body = st.Size(), f
		default:
			hdr.Size, body = int64(len(e.data)), bytes.NewReader(e.data)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if body != nil {
			if _, err := io.Copy(tw, body); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

// caBundle is the pinned Mozilla root set as PEM. Roots that carry a
// constraint (distrust after a date) are left out: a PEM file cannot say
// so, and trusting them without it would be wrong.
func caBundle() []byte {
	var b bytes.Buffer
	for root := range bundle.Roots() {
		if root.Constraint != nil {
			continue
		}
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: root.Certificate})
	}
	return b.Bytes()
}

// baseEntries are the files every image shares: the non-root user, /tmp,
// its home and the CA roots. Nothing comes from the build machine.
func baseEntries() []entry {
	return []entry{
		{name: "etc/", mode: 0o755, isDir: true},
		{name: "etc/group", mode: 0o444, data: fmt.Appendf(nil, "root:x:0:\n%s:x:%d:\n", userName, uid)},
		{name: "etc/passwd", mode: 0o444, data: fmt.Appendf(nil, "root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:%s:/sbin/nologin\n", userName, uid, uid, userName, home)},
		{name: "etc/ssl/", mode: 0o755, isDir: true},
		{name: "etc/ssl/certs/", mode: 0o755, isDir: true},
		{name: caFile[1:], mode: 0o444, data: caBundle()},
		{name: "home/", mode: 0o755, isDir: true},
		{name: home[1:] + "/", mode: 0o700, uid: uid, isDir: true},
		{name: "tmp/", mode: 0o1777, isDir: true},
	}
}

// appEntries hold the service's binary, read-only and owned by root so
// the process cannot replace itself.
func appEntries(service, binary string) []entry {
	return []entry{
		{name: "usr/", mode: 0o755, isDir: true},
		{name: "usr/local/", mode: 0o755, isDir: true},
		{name: binDir[1:] + "/", mode: 0o755, isDir: true},
		{name: binDir[1:] + "/" + service, mode: 0o555, file: binary},
	}
}

// layerMeta is what an image needs to know of a layer without reading it.
type layerMeta struct {
	Digest string `json:"digest"`
	DiffID string `json:"diffID"`
	Size   int64  `json:"size"`
}

// writeLayer writes entries as a gzipped tar to path (atomically) and
// returns its digests. gzip at a fixed level with no name or time in its
// header keeps the compressed bytes reproducible too.
func writeLayer(path string, entries []entry, mtime time.Time) (layerMeta, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".layer-*")
	if err != nil {
		return layerMeta{}, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	compressed, uncompressed := sha256.New(), sha256.New()
	counter := &countWriter{}
	gz, _ := gzip.NewWriterLevel(io.MultiWriter(tmp, compressed, counter), gzip.DefaultCompression)
	if err := writeTar(io.MultiWriter(gz, uncompressed), entries, mtime); err != nil {
		return layerMeta{}, err
	}
	if err := gz.Close(); err != nil {
		return layerMeta{}, err
	}
	if err := tmp.Close(); err != nil {
		return layerMeta{}, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return layerMeta{}, err
	}
	return layerMeta{
		Digest: "sha256:" + hex.EncodeToString(compressed.Sum(nil)),
		DiffID: "sha256:" + hex.EncodeToString(uncompressed.Sum(nil)),
		Size:   counter.n,
	}, nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// fileLayer is a layer kept as a gzipped tar on disk, with its digests
// known, so a warm build reads nothing it does not push.
type fileLayer struct {
	path string
	meta layerMeta
}

func (l *fileLayer) Digest() (v1.Hash, error) { return v1.NewHash(l.meta.Digest) }
func (l *fileLayer) DiffID() (v1.Hash, error) { return v1.NewHash(l.meta.DiffID) }
func (l *fileLayer) Size() (int64, error)     { return l.meta.Size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) {
	return types.OCILayer, nil
}
func (l *fileLayer) Compressed() (io.ReadCloser, error) { return os.Open(l.path) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	gz, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return readCloser{gz, f}, nil
}

type readCloser struct {
	io.Reader
	f *os.File
}

func (r readCloser) Close() error { return r.f.Close() }

// readMeta reads a cached layer's digests; ok is false when the cache
// has no complete entry.
func readMeta(path string, v any) bool {
	data, err := os.ReadFile(path)
	return err == nil && json.Unmarshal(data, v) == nil
}
