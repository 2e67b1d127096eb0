package switchboard

import (
	"strings"
	"testing"
)

// A room's members come in join order; a leaving member's place goes to
// the last one; lookups and the count follow every change.
func TestRoomMembersOrder(t *testing.T) {
	var m roomMembers
	sock := func(id string) *Socket { return &Socket{id: id} }
	order := func() string {
		var ids []string
		m.each(func(id string, s *Socket) {
			if s.id != id {
				t.Errorf("member %q listed as %q", s.id, id)
			}
			ids = append(ids, id)
		})
		return strings.Join(ids, ",")
	}
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		m.add(id, sock(id))
	}
	m.add("c", sock("c")) // again: no duplicate
	if got := order(); got != "a,b,c,d,e" || m.len() != 5 {
		t.Fatalf("after joins: %s (len %d)", got, m.len())
	}
	m.remove("b")
	m.remove("x") // not a member
	if got := order(); got != "a,e,c,d" || m.len() != 4 {
		t.Fatalf("after b left: %s (len %d)", got, m.len())
	}
	m.remove("d") // the last
	m.add("f", sock("f"))
	if got := order(); got != "a,e,c,f" {
		t.Fatalf("after d left and f joined: %s", got)
	}
	for _, id := range []string{"a", "e", "c", "f"} {
		if s := m.get(id); s == nil || s.id != id {
			t.Errorf("get(%q) = %v", id, s)
		}
	}
	if m.get("b") != nil || m.get("d") != nil {
		t.Error("a member that left is still found")
	}
	var one roomMembers
	one.add("a", sock("a"))
	one.add("a", sock("a"))
	if one.len() != 1 || one.many != nil {
		t.Errorf("one member joining twice: len %d, list %v", one.len(), one.many)
	}
}
