package engineio

import (
	"net/http"
	"reflect"
	"testing"
)

func TestPackedHeaderRoundTrip(t *testing.T) {
	h := http.Header{
		"Host":          {"127.0.0.1:3000"},
		"Cookie":        {"a=1", "b=2"},
		"Authorization": {"Bearer x:y:z"}, // a colon in a value
		"X-Empty":       {""},
		"Origin":        {"http://example.com"},
	}
	packed := packHeader(h)
	if got := unpackHeader(packed); !reflect.DeepEqual(got, h) {
		t.Fatalf("unpackHeader(packHeader(h)) = %v, want %v", got, h)
	}
	if got := unpackHeader(packHeader(http.Header{})); len(got) != 0 {
		t.Errorf("empty header came back as %v", got)
	}
}
