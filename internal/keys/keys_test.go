package keys

import (
	"strconv"
	"strings"
	"testing"
)

func TestKeysCRC16(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint16
	}{
		{"", 0},
		{"123456789", 0x31C3}, // the XMODEM check value
		{"A", 0x58E5},
	} {
		if got := crc16(tc.in); got != tc.want {
			t.Errorf("crc16(%q) = %#04x, want %#04x", tc.in, got, tc.want)
		}
	}
}

func TestKeysHashTag(t *testing.T) {
	for _, tc := range []struct {
		key, tag string
		ok       bool
	}{
		{"foo", "", false},
		{"{user1000}.following", "user1000", true},
		{"foo{bar}{zap}", "bar", true},  // the first tag only
		{"foo{{bar}}zap", "{bar", true}, // from the first '{' to the first '}'
		{"foo{}{bar}", "", false},       // "{}" at the first '{': hashed whole
		{"{}", "", false},               // empty tag
		{"{bar", "", false},             // no closing brace
		{"}{", "", false},               // '}' before '{' does not count
		{"a}b{c}", "c", true},           // a '}' before the '{' is ignored
		{"{{}}", "{", true},
		{"x{ y }z", " y ", true}, // spaces are part of the tag
		{"{orders}:dlq", "orders", true},
		{"", "", false},
	} {
		tag, ok := HashTag(tc.key)
		if tag != tc.tag || ok != tc.ok {
			t.Errorf("HashTag(%q) = %q, %v; want %q, %v", tc.key, tag, ok, tc.tag, tc.ok)
		}
	}
}

// TestKeysSlot checks Slot against CLUSTER KEYSLOT of a Redis 7.0 server.
func TestKeysSlot(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want uint16
	}{
		{"foo", 12182},
		{"bar", 5061},
		{"123456789", 12739}, // CRC16 0x31C3 mod 16384
		{"{user1000}.following", 3443},
		{"{user1000}.followers", 3443},
		{"foo{}{bar}", 8363},
		{"foo{{bar}}zap", 4015},
		{"{bar", 4015},
		{"foo{bar}{zap}", 5061},
		{"", 0},
		{"{}", 15257},
		{"}{", 12793},
		{"a}b", 7866},
		{"orders", 105},
		{"{orders}", 105},
		{"{orders}:dlq", 105},
		{"ß{é}", 10180},
		{"x{ y }z", 4197},
		{"{{}}", 4092},
	} {
		if got := Slot(tc.key); got != tc.want {
			t.Errorf("Slot(%q) = %d, want %d", tc.key, got, tc.want)
		}
	}
}

func TestKeysSameSlot(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"{user1000}.following", "{user1000}.followers", true},
		{"orders", "{orders}:dlq", true},
		{"{orders}", "{orders}:dlq", true},
		{"bar", "foo{bar}{zap}", true},
		{"foo", "bar", false},
		{"orders", "orders:dlq", false},
		{"x", "x", true},
	} {
		if got := SameSlot(tc.a, tc.b); got != tc.want {
			t.Errorf("SameSlot(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestKeysSlotRange(t *testing.T) {
	for i := range 100000 {
		k := string(rune(i))
		if s := Slot(k); s >= SlotCount {
			t.Fatalf("Slot(%q) = %d, out of range", k, s)
		}
	}
}

// TestKeysTagInSlot: every slot has a tag, the first in "{0}", "{1}", …,
// and a key starting with it lives in that slot whatever follows.
func TestKeysTagInSlot(t *testing.T) {
	first := make(map[uint16]string, SlotCount) // slot → its first tag, in one pass
	last := uint16(0)                           // the slot found last
	for i := 0; len(first) < SlotCount; i++ {
		tag := "{" + strconv.Itoa(i) + "}"
		if s := Slot(tag); first[s] == "" {
			first[s], last = tag, s
		}
	}
	for s := uint16(0); s < SlotCount; s += 97 {
		checkTagInSlot(t, s, first[s])
	}
	checkTagInSlot(t, last, first[last])
	if TagInSlot(SlotCount+5) != TagInSlot(5) {
		t.Fatal("TagInSlot does not reduce the slot modulo SlotCount")
	}
}

func checkTagInSlot(t *testing.T, slot uint16, want string) {
	t.Helper()
	tag := TagInSlot(slot)
	if tag != want {
		t.Fatalf("TagInSlot(%d) = %q, want %q", slot, tag, want)
	}
	if got := Slot(tag + "a}b{c}"); got != slot {
		t.Fatalf("TagInSlot(%d) = %q: a key starting with it is in slot %d", slot, tag, got)
	}
}

func TestSlotPrefix(t *testing.T) {
	for _, key := range []string{"orders", "{user1}.orders", "a}b", "{}x", "x{", "ünï", ""} {
		p := SlotPrefix(key)
		if !SameSlot(p+":midstream:delay", key) {
			t.Errorf("SlotPrefix(%q) = %q: not in the key's slot", key, p)
		}
	}
	if got := SlotPrefix("orders"); got != "{orders}" {
		t.Errorf("SlotPrefix(orders) = %q, want {orders}", got)
	}
	if got := SlotPrefix("{u}.s"); got != "{u}.s" {
		t.Errorf("SlotPrefix({u}.s) = %q, want it unchanged", got)
	}
}

func TestApart(t *testing.T) {
	seen := map[string]string{}
	for _, k := range []string{"notifications:123", "notifications:{123}", "notifications:a}b", "notifications:{}x",
		"notifications:u:read", "notifications:u", "feed:ann", "{0}", "0", "feed:{ann}:x"} {
		a := Apart(k, "read")
		if Slot(a) != Slot(k) {
			t.Errorf("Apart(%q) = %q in slot %d, want %d", k, a, Slot(a), Slot(k))
		}
		if strings.HasPrefix(a, "notifications:") || strings.HasPrefix(a, "feed:") {
			t.Errorf("Apart(%q) = %q is under the key's prefix", k, a)
		}
		if prev, dup := seen[a]; dup {
			t.Errorf("Apart(%q) = Apart(%q) = %q", k, prev, a)
		}
		seen[a] = k
	}
	if got := Apart("notifications:123", "read"); got != "{notifications:123}:read" {
		t.Errorf("Apart = %q", got)
	}
}
