package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Leeway is the clock skew tolerated on exp, nbf and iat.
const Leeway = 30 * time.Second

// algorithms are the only accepted signing algorithms. Listing them is
// what defeats "alg: none" and HS256 tokens keyed with the public key.
var algorithms = []string{"RS256", "ES256"}

// JWTConfig says where the verification keys are and what the tokens must
// claim.
type JWTConfig struct {
	// PublicKeyFile is a PEM file of one or more public keys or certificates.
	PublicKeyFile string
	// JWKSFile is a JSON Web Key Set file; keys are matched by "kid".
	JWKSFile string
	Issuer   string
	// Audience is the audience tokens must name, or several separated by
	// commas (AUTH_JWT_AUDIENCE as msctl renders auth.audiences), any one
	// of which a token must name, as the mesh's RequestAuthentication
	// checks them.
	Audience string
}

type verificationKey struct {
	kid string
	key crypto.PublicKey
}

// JWTVerifier checks bearer tokens.
type JWTVerifier struct {
	keys   []verificationKey
	parser *jwt.Parser
}

// claims are the registered claims plus the roles we authorise by.
type claims struct {
	jwt.RegisteredClaims
	Roles []string `json:"roles"`
}

// NewJWTVerifier loads the keys named in cfg. Issuer and audience are
// required: a verifier that accepts any issuer accepts tokens minted for
// someone else.
func NewJWTVerifier(cfg JWTConfig) (*JWTVerifier, error) {
	if cfg.Issuer == "" || len(audiences(cfg.Audience)) == 0 {
		return nil, errors.New("auth: JWT issuer and audience are required")
	}
	var keys []verificationKey
	if cfg.PublicKeyFile != "" {
		ks, err := loadPEM(cfg.PublicKeyFile)
		if err != nil {
			return nil, err
		}
		keys = append(keys, ks...)
	}
	if cfg.JWKSFile != "" {
		ks, err := loadJWKS(cfg.JWKSFile)
		if err != nil {
			return nil, err
		}
		keys = append(keys, ks...)
	}
	if len(keys) == 0 {
		return nil, errors.New("auth: no JWT verification key configured")
	}
	return newVerifier(keys, cfg.Issuer, cfg.Audience)
}

func newVerifier(keys []verificationKey, issuer, audience string) (*JWTVerifier, error) {
	for _, k := range keys {
		if err := checkKey(k.key); err != nil {
			return nil, err
		}
	}
	return &JWTVerifier{keys: keys, parser: jwt.NewParser(
		jwt.WithValidMethods(algorithms),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audiences(audience)...),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway),
	)}, nil
}

// audiences splits a comma-separated list of audiences, dropping blanks.
func audiences(list string) []string {
	var out []string
	for _, a := range strings.Split(list, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

func checkKey(k crypto.PublicKey) error {
	switch k := k.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("auth: RSA key of %d bits is too small (2048 at least)", k.N.BitLen())
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return errors.New("auth: ECDSA key is not on P-256, the ES256 curve")
		}
	default:
		return fmt.Errorf("auth: unsupported key type %T (RSA or ECDSA P-256 only)", k)
	}
	return nil
}

// Verify checks a token's signature, algorithm and claims and returns its
// subject and roles. Errors are Unauthenticated statuses whose message
// names the reason, never the token.
func (v *JWTVerifier) Verify(token string) (Principal, error) {
	var c claims
	_, err := v.parser.ParseWithClaims(token, &c, v.keyFor)
	if err != nil {
		return Principal{}, status.Error(codes.Unauthenticated, "invalid token: "+reason(err))
	}
	if c.Subject == "" {
		return Principal{}, status.Error(codes.Unauthenticated, "invalid token: no subject")
	}
	return Principal{Subject: c.Subject, Roles: c.Roles, Via: "jwt"}, nil
}

// keyFor picks the keys that fit the token's algorithm (and kid, when the
// token names one); a key of the wrong type is never offered.
func (v *JWTVerifier) keyFor(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	var set jwt.VerificationKeySet
	for _, k := range v.keys {
		if kid != "" && k.kid != "" && k.kid != kid {
			continue
		}
		switch t.Method.Alg() {
		case "RS256":
			if rk, ok := k.key.(*rsa.PublicKey); ok {
				set.Keys = append(set.Keys, rk)
			}
		case "ES256":
			if ek, ok := k.key.(*ecdsa.PublicKey); ok {
				set.Keys = append(set.Keys, ek)
			}
		}
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("no key for this algorithm and kid")
	}
	return set, nil
}

func reason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "not valid yet"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "issued in the future"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong audience"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "a required claim (exp) is missing"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "bad signature or unsupported algorithm (RS256 or ES256 only)"
	}
	return "rejected"
}

func loadPEM(path string) ([]verificationKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: JWT public key: %w", err)
	}
	var keys []verificationKey
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		switch b.Type {
		case "PUBLIC KEY":
			k, err := x509.ParsePKIXPublicKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("auth: %s: %w", path, err)
			}
			keys = append(keys, verificationKey{key: k})
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("auth: %s: %w", path, err)
			}
			keys = append(keys, verificationKey{key: c.PublicKey})
		default:
			return nil, fmt.Errorf("auth: %s: PEM block %q is not a public key or certificate", path, b.Type)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("auth: %s holds no PEM public key", path)
	}
	return keys, nil
}
