package hub

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestPatternsMatch(t *testing.T) {
	cases := []struct {
		patterns Patterns
		room     string
		want     bool
	}{
		{nil, "lobby", false},                  // a missing claim allows nothing
		{Patterns{}, "lobby", false},           // an empty one too
		{Patterns{"*"}, "lobby", true},         // any room without a slash
		{Patterns{"*"}, "team/a", false},       // * does not cross /
		{Patterns{"*/*"}, "team/a", true},      //
		{Patterns{"team/*"}, "team/a", true},   //
		{Patterns{"team/*"}, "team/", true},    // * matches the empty run
		{Patterns{"team/*"}, "team", false},    //
		{Patterns{"chat-?"}, "chat-1", true},   // ? is one character
		{Patterns{"chat-?"}, "chat-12", false}, //
		{Patterns{"[ab]-x"}, "b-x", true},      // classes
		{Patterns{"[^ab]-x"}, "c-x", true},     //
		{Patterns{`a\*`}, "a*", true},          // escaped star is literal
		{Patterns{`a\*`}, "ab", false},         //
		{Patterns{"["}, "[", false},            // malformed: matches nothing
		{Patterns{"[", "x"}, "x", true},        // ... but the others still count
		{Patterns{""}, "", true},               //
		{Patterns{"lobby"}, "Lobby", false},    // case-sensitive
		{Patterns{"user-*"}, "user-ünïcode", true},
	}
	for _, c := range cases {
		if got := c.patterns.Match(c.room); got != c.want {
			t.Errorf("%q.Match(%q) = %v, want %v", c.patterns, c.room, got, c.want)
		}
	}
}

func TestParsePatterns(t *testing.T) {
	p, err := ParsePatterns(" chat-*, team/*,,durable-* ")
	if err != nil || strings.Join(p, "|") != "chat-*|team/*|durable-*" {
		t.Fatalf("ParsePatterns = %q, %v", p, err)
	}
	if p, err := ParsePatterns(""); err != nil || len(p) != 0 {
		t.Fatalf(`ParsePatterns("") = %q, %v`, p, err)
	}
	for _, bad := range []string{"[", "a,[b", `x\`} {
		if _, err := ParsePatterns(bad); err == nil {
			t.Errorf("ParsePatterns(%q) accepted a malformed pattern", bad)
		}
	}
}

func TestPatternsJSON(t *testing.T) {
	var c Claims
	if err := json.Unmarshal([]byte(`{"sub":"u","rooms":"one","publish":["a","b"]}`), &c); err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Rooms, "|") != "one" || strings.Join(c.Publish, "|") != "a|b" {
		t.Fatalf("claims %+v", c)
	}
	for _, bad := range []string{`{"rooms":1}`, `{"rooms":[1]}`, `{"rooms":{"a":1}}`} {
		if err := json.Unmarshal([]byte(bad), &c); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func hsToken(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerifyHMAC(t *testing.T) {
	v, err := newVerifier(testSecret, nil, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cases := []struct {
		name   string
		token  string
		wantOK bool
	}{
		{"valid", hsToken(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"sub": "u", "exp": now.Add(time.Hour).Unix()}), true},
		{"no exp is accepted", hsToken(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"sub": "u"}), true},
		{"HS512", hsToken(t, jwt.SigningMethodHS512, testSecret, jwt.MapClaims{"sub": "u"}), true},
		{"expired within the leeway", hsToken(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"sub": "u", "exp": now.Add(-10 * time.Second).Unix()}), true},
		{"expired beyond the leeway", hsToken(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"sub": "u", "exp": now.Add(-40 * time.Second).Unix()}), false},
		{"nbf within the leeway", hsToken(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"sub": "u", "nbf": now.Add(10 * time.Second).Unix()}), true},
		{"nbf in the future", hsToken(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"sub": "u", "nbf": now.Add(time.Hour).Unix()}), false},
		{"no sub", hsToken(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"exp": now.Add(time.Hour).Unix()}), false},
		{"empty sub", hsToken(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"sub": ""}), false},
		{"numeric sub", hsToken(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"sub": 42}), false},
		{"bad signature", hsToken(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-!!"), jwt.MapClaims{"sub": "u"}), false},
		{"alg none", hsToken(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{"sub": "u"}), false},
		{"bad rooms claim", hsToken(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"sub": "u", "rooms": 3}), false},
		{"garbage", "not.a.token", false},
		{"empty", "", false},
	}
	for _, c := range cases {
		claims, err := v.verify(c.token)
		if (err == nil) != c.wantOK {
			t.Errorf("%s: err = %v, want ok %v", c.name, err, c.wantOK)
		}
		if err == nil && claims.Subject != "u" {
			t.Errorf("%s: sub %q", c.name, claims.Subject)
		}
	}
	if _, err := newVerifier(testSecret, nil, 61*time.Second); err == nil {
		t.Error("a leeway over 60 s was accepted")
	}
	if v, err := newVerifier(nil, nil, 0); v != nil || err != nil {
		t.Errorf("no keys: %v, %v; want development mode (nil verifier)", v, err)
	}
}

func pemPublic(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func TestVerifyPublicKeys(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{"sub": "u", "rooms": []string{"a"}}

	rsaPEM := pemPublic(t, &rsaKey.PublicKey)
	rsaPub, err := ParsePublicKey(rsaPEM)
	if err != nil {
		t.Fatal(err)
	}
	v, err := newVerifier(nil, rsaPub, 0)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := v.verify(hsToken(t, jwt.SigningMethodRS256, rsaKey, claims)); err != nil || !c.Rooms.Match("a") {
		t.Errorf("RS256: %v", err)
	}
	// Algorithm confusion: an HS256 token "signed" with the public key's
	// PEM must not pass when only a public key is configured.
	if _, err := v.verify(hsToken(t, jwt.SigningMethodHS256, rsaPEM, claims)); err == nil {
		t.Error("HS256 token signed with the RSA public key accepted")
	}
	if _, err := v.verify(hsToken(t, jwt.SigningMethodES256, ecKey, claims)); err == nil {
		t.Error("ES256 token accepted by an RSA verifier")
	}

	ecPub, err := ParsePublicKey(pemPublic(t, &ecKey.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	v, err = newVerifier(nil, ecPub, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.verify(hsToken(t, jwt.SigningMethodES256, ecKey, claims)); err != nil {
		t.Errorf("ES256: %v", err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := v.verify(hsToken(t, jwt.SigningMethodES256, other, claims)); err == nil {
		t.Error("ES256 token of another key accepted")
	}

	if _, err := ParsePublicKey([]byte("nope")); err == nil {
		t.Error("ParsePublicKey accepted garbage")
	}
	if _, err := ParsePublicKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}})); err == nil {
		t.Error("ParsePublicKey accepted a private key block")
	}
}

func TestTokenFrom(t *testing.T) {
	h := http.Header{}
	h.Set("Authorization", "Bearer from-header")
	cases := []struct {
		auth string
		want string
	}{
		{`{"token":"from-auth"}`, "from-auth"},
		{`{"token":""}`, "from-header"},
		{`{"token":5}`, "from-header"},
		{`{}`, "from-header"},
		{``, "from-header"},
		{`[1]`, "from-header"},
	}
	for _, c := range cases {
		if got := tokenFrom(json.RawMessage(c.auth), h); got != c.want {
			t.Errorf("tokenFrom(%s) = %q, want %q", c.auth, got, c.want)
		}
	}
	if got := tokenFrom(nil, http.Header{"Authorization": {"Basic abc"}}); got != "" {
		t.Errorf("Basic credentials taken as a token: %q", got)
	}
	if got := tokenFrom(nil, http.Header{"Authorization": {"bearer  x "}}); got != "x" {
		t.Errorf("lower-case bearer: %q", got)
	}
}
