package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/msctl/msctl/services/kit/logging"
)

const (
	iss = "https://issuer.test"
	aud = "user-service"
)

func writePEM(t *testing.T, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func sign(t *testing.T, m jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestJWTVerify(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pemFile := writePEM(t, &rsaKey.PublicKey)
	pubDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	// The EC key comes from a JWKS file, so both loaders are exercised.
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "EC", "crv": "P-256", "kid": "ec1", "use": "sig",
		"x": b64(ecKey.X.FillBytes(make([]byte, 32))), "y": b64(ecKey.Y.FillBytes(make([]byte, 32))),
	}}})
	jwksFile := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwksFile, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	v, err := NewJWTVerifier(JWTConfig{PublicKeyFile: pemFile, JWKSFile: jwksFile, Issuer: iss, Audience: aud})
	if err != nil {
		t.Fatal(err)
	}

	now := time.Now()
	good := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": iss, "aud": aud, "sub": "alice", "roles": []string{"admin"},
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	}
	with := func(k string, val any) jwt.MapClaims { c := good(); c[k] = val; return c }
	without := func(k string) jwt.MapClaims { c := good(); delete(c, k); return c }
	none := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good())

	cases := []struct {
		name   string
		token  string
		reason string // "" means accepted
	}{
		{"RS256 from PEM", sign(t, jwt.SigningMethodRS256, rsaKey, good()), ""},
		{"ES256 from JWKS", sign(t, jwt.SigningMethodES256, ecKey, good()), ""},
		{"within leeway of expiry", sign(t, jwt.SigningMethodRS256, rsaKey, with("exp", now.Add(-10*time.Second).Unix())), ""},
		{"alg none", none, "invalid token: bad signature or unsupported algorithm (RS256 or ES256 only)"},
		{"HS256 keyed with the public key", sign(t, jwt.SigningMethodHS256, pubPEM, good()), "invalid token: bad signature or unsupported algorithm (RS256 or ES256 only)"},
		{"RS512 is not accepted", sign(t, jwt.SigningMethodRS512, rsaKey, good()), "invalid token: bad signature or unsupported algorithm (RS256 or ES256 only)"},
		{"signed by another key", sign(t, jwt.SigningMethodES256, mustEC(t), good()), "invalid token: bad signature or unsupported algorithm (RS256 or ES256 only)"},
		{"wrong issuer", sign(t, jwt.SigningMethodRS256, rsaKey, with("iss", "https://evil.test")), "invalid token: wrong issuer"},
		{"wrong audience", sign(t, jwt.SigningMethodRS256, rsaKey, with("aud", "billing")), "invalid token: wrong audience"},
		{"expired", sign(t, jwt.SigningMethodRS256, rsaKey, with("exp", now.Add(-time.Hour).Unix())), "invalid token: expired"},
		{"not valid yet", sign(t, jwt.SigningMethodRS256, rsaKey, with("nbf", now.Add(time.Hour).Unix())), "invalid token: not valid yet"},
		{"no expiry", sign(t, jwt.SigningMethodRS256, rsaKey, without("exp")), "invalid token: a required claim (exp) is missing"},
		{"no subject", sign(t, jwt.SigningMethodRS256, rsaKey, without("sub")), "invalid token: no subject"},
		{"garbage", "not.a.token", "invalid token: malformed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := v.Verify(tc.token)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				if p.Subject != "alice" || len(p.Roles) != 1 || p.Roles[0] != "admin" {
					t.Fatalf("principal = %+v", p)
				}
				return
			}
			st := status.Convert(err)
			if st.Code() != codes.Unauthenticated || st.Message() != tc.reason {
				t.Fatalf("got %v %q, want Unauthenticated %q", st.Code(), st.Message(), tc.reason)
			}
		})
	}
}

func mustEC(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// AUTH_JWT_AUDIENCE may list several audiences, comma-separated, as msctl
// renders auth.audiences; like Istio, a token must name any one of them.
func TestJWTAudienceList(t *testing.T) {
	key := mustEC(t)
	v, err := NewJWTVerifier(JWTConfig{PublicKeyFile: writePEM(t, &key.PublicKey), Issuer: iss, Audience: " shop, shop-admin ,"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cases := []struct {
		name string
		aud  any
		ok   bool
	}{
		{"the first", "shop", true},
		{"the second", "shop-admin", true},
		{"one of the token's", []string{"billing", "shop-admin"}, true},
		{"none of them", "billing", false},
		{"the list as one audience", "shop,shop-admin", false},
		{"no audience", nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := jwt.MapClaims{"iss": iss, "sub": "alice", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
			if tc.aud != nil {
				c["aud"] = tc.aud
			}
			_, err := v.Verify(sign(t, jwt.SigningMethodES256, key, c))
			if (err == nil) != tc.ok {
				t.Errorf("accepted = %v (%v), want %v", err == nil, err, tc.ok)
			}
		})
	}
	// The dev signer's tokens name every audience of its list.
	signer, err := NewDevSigner(iss, "shop,shop-admin")
	if err != nil {
		t.Fatal(err)
	}
	dv, err := signer.Verifier()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := signer.Token("alice", nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dv.Verify(tok); err != nil {
		t.Errorf("dev token refused: %v", err)
	}
}

func TestNewJWTVerifierRefusesWeakConfig(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]JWTConfig{
		"no issuer":    {PublicKeyFile: writePEM(t, &mustEC(t).PublicKey), Audience: aud},
		"no audience":  {PublicKeyFile: writePEM(t, &mustEC(t).PublicKey), Issuer: iss, Audience: " , "},
		"no key":       {Issuer: iss, Audience: aud},
		"1024-bit RSA": {PublicKeyFile: writePEM(t, &small.PublicKey), Issuer: iss, Audience: aud},
		"missing file": {PublicKeyFile: "/nonexistent.pem", Issuer: iss, Audience: aud},
		"P-384 EC key": {PublicKeyFile: writePEM(t, &must384(t).PublicKey), Issuer: iss, Audience: aud},
	}
	for name, cfg := range cases {
		if _, err := NewJWTVerifier(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func must384(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestAPIKeys(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	keys, err := NewAPIKeys([]APIKeyEntry{
		{Name: "ci", SHA256: HashAPIKey("secret-ci"), Roles: []string{"reader"}, Expires: now.Add(time.Hour), RatePerSecond: 0.001, Burst: 2},
		{Name: "old", SHA256: HashAPIKey("secret-old"), Roles: []string{"reader"}, Expires: now.Add(-time.Second), RatePerSecond: 1, Burst: 1},
	}, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		key  string
		want codes.Code
	}{
		{"secret-ci", codes.OK},
		{"secret-ci", codes.OK},
		{"secret-ci", codes.ResourceExhausted}, // burst of 2 used up
		{"secret-old", codes.Unauthenticated},  // expired
		{"secret-unknown", codes.Unauthenticated},
		{HashAPIKey("secret-ci"), codes.Unauthenticated}, // the stored hash is not a key
	}
	for i, tc := range cases {
		p, err := keys.Verify(tc.key)
		if got := status.Code(err); got != tc.want {
			t.Fatalf("case %d: got %v, want %v", i, got, tc.want)
		}
		if tc.want == codes.OK && p.Subject != "apikey:ci" {
			t.Fatalf("case %d: subject %q", i, p.Subject)
		}
	}
}

func TestNewAPIKeysValidates(t *testing.T) {
	exp := time.Now().Add(time.Hour)
	h := HashAPIKey("k")
	bad := map[string]APIKeyEntry{
		"no name":    {SHA256: h, Roles: []string{"r"}, Expires: exp, RatePerSecond: 1, Burst: 1},
		"short hash": {Name: "a", SHA256: "abcd", Roles: []string{"r"}, Expires: exp, RatePerSecond: 1, Burst: 1},
		"no roles":   {Name: "a", SHA256: h, Expires: exp, RatePerSecond: 1, Burst: 1},
		"no expiry":  {Name: "a", SHA256: h, Roles: []string{"r"}, RatePerSecond: 1, Burst: 1},
		"no rate":    {Name: "a", SHA256: h, Roles: []string{"r"}, Expires: exp, Burst: 1},
	}
	for name, e := range bad {
		if _, err := NewAPIKeys([]APIKeyEntry{e}, time.Now); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// devSigner is a dev signer for iss and aud, and the verifier of its tokens.
func devSigner(t *testing.T) (*Signer, *JWTVerifier) {
	t.Helper()
	signer, err := NewDevSigner(iss, aud)
	if err != nil {
		t.Fatal(err)
	}
	v, err := signer.Verifier()
	if err != nil {
		t.Fatal(err)
	}
	return signer, v
}

func TestAuthenticatePolicy(t *testing.T) {
	signer, v := devSigner(t)
	pol := Policy{
		Roles:   map[string][]Permission{"admin": {"read", "write"}, "reader": {"read"}},
		Methods: map[string]Permission{"/svc/Get": "read", "/svc/Put": "write"},
		Public:  map[string]bool{"/svc/Ping": true},
	}
	a := New(pol, v, nil, logging.Discard())
	tok := func(roles ...string) string {
		s, err := signer.Token("bob", roles, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + s
	}
	cases := []struct {
		name, method string
		md           metadata.MD
		want         codes.Code
	}{
		{"public needs nothing", "/svc/Ping", nil, codes.OK},
		{"health is always public", "/grpc.health.v1.Health/Check", nil, codes.OK},
		{"missing credentials", "/svc/Get", nil, codes.Unauthenticated},
		{"reader reads", "/svc/Get", metadata.Pairs("authorization", tok("reader")), codes.OK},
		{"reader cannot write", "/svc/Put", metadata.Pairs("authorization", tok("reader")), codes.PermissionDenied},
		{"admin writes", "/svc/Put", metadata.Pairs("authorization", tok("admin")), codes.OK},
		{"method missing from the table", "/svc/Drop", metadata.Pairs("authorization", tok("admin")), codes.PermissionDenied},
		{"basic scheme", "/svc/Get", metadata.Pairs("authorization", "Basic Ym9iOnB3"), codes.Unauthenticated},
		{"api key with no keys configured", "/svc/Get", metadata.Pairs("x-api-key", "k"), codes.Unauthenticated},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := metadata.NewIncomingContext(context.Background(), tc.md)
			_, err := a.Authenticate(ctx, tc.method)
			if got := status.Code(err); got != tc.want {
				t.Fatalf("got %v (%v), want %v", got, err, tc.want)
			}
		})
	}
	if err := pol.Covers([]string{"/svc/Get", "/svc/Ping", "/svc/New"}); err == nil {
		t.Fatal("Covers missed /svc/New")
	}
}
