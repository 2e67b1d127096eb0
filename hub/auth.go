package hub

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MaxLeeway is the largest clock skew Config.JWTLeeway may allow.
const MaxLeeway = 60 * time.Second

// Patterns is a list of room patterns in Go path.Match syntax ("*" matches
// any run of characters except "/"). In a JWT claim it is an array of
// strings; a single string is accepted as a one-element array.
type Patterns []string

// UnmarshalJSON accepts an array of strings or one string.
func (p *Patterns) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*p = Patterns{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("room patterns must be a string or an array of strings")
	}
	*p = many
	return nil
}

// Match reports whether any pattern matches room. A malformed pattern
// matches nothing; an empty list matches nothing.
func (p Patterns) Match(room string) bool {
	for _, pat := range p {
		if ok, err := path.Match(pat, room); err == nil && ok {
			return true
		}
	}
	return false
}

// ParsePatterns splits a comma-separated list of patterns and checks each
// one's syntax. Blank entries are dropped; "" gives an empty list.
func ParsePatterns(list string) (Patterns, error) {
	var out Patterns
	for _, p := range strings.Split(list, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("room pattern %q: %w", p, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// Claims are the JWT claims the hub reads. Unknown claims are ignored.
type Claims struct {
	jwt.RegisteredClaims
	// Rooms lists the rooms the client may join (and ask presence of).
	// Missing: none.
	Rooms Patterns `json:"rooms,omitempty"`
	// Publish lists the rooms the client may publish to. Missing: none.
	Publish Patterns `json:"publish,omitempty"`
}

// verifier checks connection tokens.
type verifier struct {
	secret  []byte
	public  crypto.PublicKey
	methods []string
	parser  *jwt.Parser
}

func newVerifier(secret []byte, public crypto.PublicKey, leeway time.Duration) (*verifier, error) {
	v := &verifier{secret: secret, public: public}
	if len(secret) > 0 {
		v.methods = append(v.methods, "HS256", "HS384", "HS512")
	}
	switch public.(type) {
	case nil:
	case *rsa.PublicKey:
		v.methods = append(v.methods, "RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
	case *ecdsa.PublicKey:
		v.methods = append(v.methods, "ES256", "ES384", "ES512")
	case ed25519.PublicKey:
		v.methods = append(v.methods, "EdDSA")
	default:
		return nil, fmt.Errorf("unsupported public key type %T", public)
	}
	if len(v.methods) == 0 {
		return nil, nil
	}
	if leeway < 0 || leeway > MaxLeeway {
		return nil, fmt.Errorf("JWT leeway %v: must be between 0 and %v", leeway, MaxLeeway)
	}
	v.parser = jwt.NewParser(jwt.WithValidMethods(v.methods), jwt.WithLeeway(leeway))
	return v, nil
}

var errNoToken = errors.New("no token")

// verify parses and checks a token: signature, exp and nbf (with the
// leeway), and a non-empty sub.
func (v *verifier) verify(token string) (*Claims, error) {
	if token == "" {
		return nil, errNoToken
	}
	var c Claims
	_, err := v.parser.ParseWithClaims(token, &c, v.key)
	if err != nil {
		return nil, err
	}
	if c.Subject == "" {
		return nil, errors.New("token has no sub claim")
	}
	return &c, nil
}

func (v *verifier) key(t *jwt.Token) (any, error) {
	switch t.Method.(type) {
	case *jwt.SigningMethodHMAC:
		if len(v.secret) == 0 {
			return nil, errors.New("HMAC tokens not accepted")
		}
		return v.secret, nil
	default:
		if v.public == nil {
			return nil, errors.New("public-key tokens not accepted")
		}
		return v.public, nil
	}
}

// ParsePublicKey reads a PEM public key (PKIX "PUBLIC KEY", PKCS#1 "RSA
// PUBLIC KEY", or a certificate) for RS*, PS*, ES* or EdDSA tokens.
func ParsePublicKey(pemData []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(pemData)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	switch block.Type {
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		return cert.PublicKey, nil
	}
	return nil, fmt.Errorf("PEM block %q is not a public key", block.Type)
}

// tokenFrom returns the token of a connection: auth payload {token}, else
// the handshake's "Authorization: Bearer" header.
func tokenFrom(auth json.RawMessage, h http.Header) string {
	if len(auth) > 0 {
		var a struct {
			Token any `json:"token"`
		}
		if json.Unmarshal(auth, &a) == nil {
			if s, ok := a.Token.(string); ok && s != "" {
				return s
			}
		}
	}
	return bearer(h.Get("Authorization"))
}

func bearer(v string) string {
	const prefix = "bearer "
	if len(v) > len(prefix) && strings.EqualFold(v[:len(prefix)], prefix) {
		return strings.TrimSpace(v[len(prefix):])
	}
	return ""
}

// connInfo is what the hub keeps about a connection, as the socket's data
// (so it survives connection-state recovery, as JSON with a cluster
// adapter).
type connInfo struct {
	Identity string   `json:"identity"`
	Anon     bool     `json:"anon,omitempty"` // dev mode without clientId: identity is per connection
	Dev      bool     `json:"dev,omitempty"`  // development mode: everything allowed
	Rooms    Patterns `json:"rooms,omitempty"`
	Publish  Patterns `json:"publish,omitempty"`
}

func (c *connInfo) canJoin(room string) bool    { return c.Dev || c.Rooms.Match(room) }
func (c *connInfo) canPublish(room string) bool { return c.Dev || c.Publish.Match(room) }

// durableIdentity is the identity durable subscriptions belong to; "" for
// anonymous development connections.
func (c *connInfo) durableIdentity() string {
	if c.Anon {
		return ""
	}
	return c.Identity
}

// infoOf returns the connInfo kept in a socket's data, which a cluster
// adapter may have turned into a generic JSON value.
func infoOf(data any) *connInfo {
	switch d := data.(type) {
	case *connInfo:
		return d
	case nil:
		return nil
	default:
		b, err := json.Marshal(d)
		if err != nil {
			return nil
		}
		var c connInfo
		if json.Unmarshal(b, &c) != nil || c.Identity == "" {
			return nil
		}
		return &c
	}
}
