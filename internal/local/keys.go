package local

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/msctl/msctl/internal/atomicfile"
)

// keys are the API keys of one run: an admin key for the person (and the
// load generator) calling through the gateway, and a service key that
// callers present to the services they call. The services see only their
// SHA-256 hashes (AUTH_API_KEYS_FILE), never dev mode.
type keys struct {
	dir         string
	admin       string
	service     string
	hashFile    string
	serviceFile string
}

// AdminKeyFile is the file holding the admin API key of the run in runDir
// (sent as X-API-Key through the gateway).
func AdminKeyFile(runDir string) string { return filepath.Join(paths(runDir).keys(), "admin.key") }

// newKeys makes fresh keys for a run and writes them, readable only by
// their owner.
func newKeys(dir string) (*keys, error) {
	k := &keys{dir: dir, admin: randomKey(), service: randomKey(), hashFile: filepath.Join(dir, "api-keys.json"),
		serviceFile: filepath.Join(dir, "service.key")}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	type entry struct {
		Name    string   `json:"name"`
		SHA256  string   `json:"sha256"`
		Roles   []string `json:"roles"`
		Expires string   `json:"expires"`
		Rate    int      `json:"rate_per_second"`
		Burst   int      `json:"burst"`
	}
	entry1 := func(name, key, role string) entry {
		sum := sha256.Sum256([]byte(key))
		// Local load runs at up to a few thousand requests a second.
		return entry{name, hex.EncodeToString(sum[:]), []string{role}, "2099-01-01T00:00:00Z", 100000, 100000}
	}
	b, err := json.MarshalIndent(map[string][]entry{"keys": {
		entry1("local-admin", k.admin, "admin"),
		entry1("local-service", k.service, "service"),
	}}, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Write(k.hashFile, b, 0o600); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(filepath.Join(dir, "admin.key"), []byte(k.admin), 0o600); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(k.serviceFile, []byte(k.service), 0o600); err != nil {
		return nil, err
	}
	return k, nil
}

// env is the authentication part of a service's environment: the hashes
// it accepts, and the file with the service key when it calls other
// services, as a mounted key Secret gives them in a cluster.
func (k *keys) env(calls []string) map[string]string {
	env := map[string]string{"AUTH_API_KEYS_FILE": k.hashFile}
	if len(calls) > 0 {
		env["DOWNSTREAM_API_KEY_FILE"] = k.serviceFile
	}
	return env
}

func randomKey() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // never fails (crypto/rand since Go 1.24)
	return hex.EncodeToString(b)
}
