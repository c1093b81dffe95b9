package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// APIKeyEntry is one key as configured: only its SHA-256 hash is stored,
// so the file (a Kubernetes Secret, say) never holds a usable key.
type APIKeyEntry struct {
	Name    string    `json:"name"`
	SHA256  string    `json:"sha256"`
	Roles   []string  `json:"roles"`
	Expires time.Time `json:"expires"`
	// RatePerSecond and Burst bound how fast this key may call.
	RatePerSecond float64 `json:"rate_per_second"`
	Burst         int     `json:"burst"`
}

type apiKey struct {
	entry   APIKeyEntry
	limiter *rate.Limiter
	// principal is built once: Verify runs on every call.
	principal Principal
}

// APIKeys verifies keys sent in the X-API-Key header.
type APIKeys struct {
	byHash map[[sha256.Size]byte]*apiKey
	now    func() time.Time
}

// HashAPIKey returns the hex SHA-256 of a key, the form the file stores.
func HashAPIKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

// LoadAPIKeys reads a JSON file {"keys": [APIKeyEntry, ...]}.
func LoadAPIKeys(path string) (*APIKeys, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: API keys: %w", err)
	}
	var f struct {
		Keys []APIKeyEntry `json:"keys"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("auth: API keys %s: %w", path, err)
	}
	return NewAPIKeys(f.Keys, time.Now)
}

// NewAPIKeys validates entries and builds the lookup; now is the clock
// used for expiry.
func NewAPIKeys(entries []APIKeyEntry, now func() time.Time) (*APIKeys, error) {
	k := &APIKeys{byHash: map[[sha256.Size]byte]*apiKey{}, now: now}
	for i, e := range entries {
		raw, err := hex.DecodeString(e.SHA256)
		switch {
		case e.Name == "":
			return nil, fmt.Errorf("auth: API key %d has no name", i)
		case err != nil || len(raw) != sha256.Size:
			return nil, fmt.Errorf("auth: API key %q: sha256 must be 64 hex digits", e.Name)
		case len(e.Roles) == 0:
			return nil, fmt.Errorf("auth: API key %q has no roles", e.Name)
		case e.Expires.IsZero():
			return nil, fmt.Errorf("auth: API key %q has no expiry", e.Name)
		case e.RatePerSecond <= 0 || e.Burst < 1:
			return nil, fmt.Errorf("auth: API key %q needs rate_per_second > 0 and burst >= 1", e.Name)
		}
		var h [sha256.Size]byte
		copy(h[:], raw)
		if _, dup := k.byHash[h]; dup {
			return nil, fmt.Errorf("auth: API key %q is listed twice", e.Name)
		}
		k.byHash[h] = &apiKey{entry: e, limiter: rate.NewLimiter(rate.Limit(e.RatePerSecond), e.Burst),
			principal: Principal{Subject: "apikey:" + e.Name, Roles: e.Roles, Via: "api_key"}}
	}
	return k, nil
}

// keepLimiters hands each key that old also lists, with the same limits,
// old's limiter; k is not yet in use.
func (k *APIKeys) keepLimiters(old *APIKeys) {
	for h, e := range k.byHash {
		if o, ok := old.byHash[h]; ok && o.entry.RatePerSecond == e.entry.RatePerSecond && o.entry.Burst == e.entry.Burst {
			e.limiter = o.limiter
		}
	}
}

// ErrRateLimited is wrapped in the ResourceExhausted status of a key that
// called too fast.
var ErrRateLimited = errors.New("API key rate limit exceeded")

// Verify looks a key up by its hash, checks expiry and takes one token from
// its rate limiter.
func (k *APIKeys) Verify(key string) (Principal, error) {
	// Comparing hashes (not keys) through a map is safe against timing:
	// what leaks is where the hash of the guess lies, not the stored key.
	e, ok := k.byHash[sha256.Sum256([]byte(key))]
	if !ok || !k.now().Before(e.entry.Expires) {
		return Principal{}, status.Error(codes.Unauthenticated, "unknown or expired API key")
	}
	if !e.limiter.Allow() {
		return Principal{}, status.Errorf(codes.ResourceExhausted, "%v for %q", ErrRateLimited, e.entry.Name)
	}
	return e.principal, nil
}
