package downstream

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"github.com/msctl/msctl/services/kit/auth"
)

// APIKey is the credential a service calls its dependencies with, read
// from a file (DOWNSTREAM_API_KEY_FILE, in the mounted key Secret). It is
// gRPC per-call credentials: every call carries the current key, and
// Reload swaps in a rotated one without a restart.
type APIKey struct {
	path string
	key  atomic.Pointer[string]
}

// LoadAPIKey reads the key at path: the whole file, surrounding white
// space trimmed.
func LoadAPIKey(path string) (*APIKey, error) {
	k := &APIKey{path: path}
	if err := k.Reload(); err != nil {
		return nil, err
	}
	return k, nil
}

// Reload reads the file again; on an error the old key stays.
func (k *APIKey) Reload() error {
	data, err := os.ReadFile(k.path)
	if err != nil {
		return err
	}
	key := strings.TrimSpace(string(data))
	switch {
	case key == "":
		return errors.New("the file is empty")
	case strings.ContainsAny(key, "\r\n\t "):
		return fmt.Errorf("the file holds more than one word; want one API key")
	}
	k.key.Store(&key)
	return nil
}

// GetRequestMetadata attaches the key to a call.
func (k *APIKey) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{auth.APIKeyKey: *k.key.Load()}, nil
}

// RequireTransportSecurity is false: inside the mesh Istio provides mTLS,
// so the connection itself is plaintext.
func (*APIKey) RequireTransportSecurity() bool { return false }
