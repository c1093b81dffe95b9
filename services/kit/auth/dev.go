package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Signer mints ES256 tokens with a private key; dev mode and tests use it.
type Signer struct {
	key    *ecdsa.PrivateKey
	kid    string
	Issuer string
	// Audience is one audience or a comma-separated list; tokens name
	// every one.
	Audience string
}

// NewDevSigner generates a fresh P-256 key pair. Nothing persists it, so
// tokens die with the process: dev mode can never become a back door.
func NewDevSigner(issuer, audience string) (*Signer, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("auth: dev key: %w", err)
	}
	return &Signer{key: k, kid: "dev", Issuer: issuer, Audience: audience}, nil
}

// Verifier returns a JWTVerifier trusting only this signer's key.
func (s *Signer) Verifier() (*JWTVerifier, error) {
	return newVerifier([]verificationKey{{kid: s.kid, key: &s.key.PublicKey}}, s.Issuer, s.Audience)
}

// Token signs a token for subject with roles, valid for ttl.
func (s *Signer) Token(subject string, roles []string, ttl time.Duration) (string, error) {
	now := time.Now()
	t := jwt.NewWithClaims(jwt.SigningMethodES256, claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.Issuer,
			Subject:   subject,
			Audience:  jwt.ClaimStrings(audiences(s.Audience)),
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Roles: roles,
	})
	t.Header["kid"] = s.kid
	return t.SignedString(s.key)
}

// JWKS is a JSON Web Key Set of the signer's public key, the form of an
// AUTH_JWKS_FILE, for tests that hand a service their signer's key.
func (s *Signer) JWKS() []byte {
	point, err := s.key.PublicKey.Bytes() // 0x04, then X and Y, 32 bytes each
	if err != nil {
		panic(err) // a key NewDevSigner made is always on P-256
	}
	b64 := base64.RawURLEncoding.EncodeToString
	data, _ := json.Marshal(map[string][]jwk{"keys": {{Kty: "EC", Crv: "P-256", Kid: s.kid, Use: "sig", Alg: "ES256",
		X: b64(point[1:33]), Y: b64(point[33:])}}})
	return data
}
