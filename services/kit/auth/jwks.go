package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
)

// jwk holds the JSON Web Key members we read (RFC 7517, 7518).
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

func loadJWKS(path string) ([]verificationKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS: %w", err)
	}
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("auth: JWKS %s: %w", path, err)
	}
	var keys []verificationKey
	for i, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue // encryption keys never verify tokens
		}
		vk, err := k.public()
		if err != nil {
			return nil, fmt.Errorf("auth: JWKS %s: key %d (kid %q): %w", path, i, k.Kid, err)
		}
		keys = append(keys, verificationKey{kid: k.Kid, key: vk})
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("auth: JWKS %s holds no signing key", path)
	}
	return keys, nil
}

func (k jwk) public() (any, error) {
	b := func(s string) (*big.Int, error) {
		raw, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(raw) == 0 {
			return nil, errors.New("bad base64url number")
		}
		return new(big.Int).SetBytes(raw), nil
	}
	switch k.Kty {
	case "RSA":
		if k.Alg != "" && k.Alg != "RS256" {
			return nil, fmt.Errorf("alg %q is not RS256", k.Alg)
		}
		n, err := b(k.N)
		if err != nil {
			return nil, err
		}
		e, err := b(k.E)
		if err != nil {
			return nil, err
		}
		if !e.IsInt64() || e.Int64() > 1<<31-1 || e.Int64() < 3 {
			return nil, errors.New("bad RSA exponent")
		}
		return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
	case "EC":
		if k.Crv != "P-256" || (k.Alg != "" && k.Alg != "ES256") {
			return nil, fmt.Errorf("curve %q / alg %q is not P-256 / ES256", k.Crv, k.Alg)
		}
		x, err := b(k.X)
		if err != nil {
			return nil, err
		}
		y, err := b(k.Y)
		if err != nil {
			return nil, err
		}
		if x.BitLen() > 256 || y.BitLen() > 256 {
			return nil, errors.New("coordinate too large for P-256")
		}
		// Round-trip through the uncompressed encoding so crypto/ecdsa checks
		// the point is on the curve; a bad point must not load.
		raw := append([]byte{4}, append(x.FillBytes(make([]byte, 32)), y.FillBytes(make([]byte, 32))...)...)
		pk, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
		if err != nil {
			return nil, err
		}
		return pk, nil
	}
	return nil, fmt.Errorf("kty %q is not RSA or EC", k.Kty)
}
