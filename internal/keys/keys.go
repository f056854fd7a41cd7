// Package keys holds Redis Cluster key-slot logic: which of the 16384 hash
// slots a key lives in, and whether two keys share one (the condition for a
// Lua script or a MULTI transaction to touch both).
//
// The rules follow the Redis Cluster specification: a key's slot is
// CRC16(key) mod 16384, where CRC16 is the XMODEM variant (polynomial 0x1021,
// initial value 0), computed over the key's hash tag when it has one.
package keys

import (
	"strconv"
	"strings"
	"sync"
)

// SlotCount is the number of hash slots in a Redis Cluster.
const SlotCount = 16384

// HashTag returns the hash tag of key: the text between the first '{' and
// the first '}' after it, when that text is not empty. Only the tag is hashed,
// so keys with the same tag ("{user1000}.following", "{user1000}.followers")
// share a slot. ok is false when key has no tag and is hashed whole: no '{',
// no '}' after the first '{', or "{}" (an empty tag) at the first '{'.
func HashTag(key string) (tag string, ok bool) {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return "", false
	}
	n := strings.IndexByte(key[open+1:], '}')
	if n <= 0 { // no '}' after the '{', or "{}"
		return "", false
	}
	return key[open+1 : open+1+n], true
}

// Slot returns the Redis Cluster hash slot of key, as CLUSTER KEYSLOT does.
func Slot(key string) uint16 {
	if tag, ok := HashTag(key); ok {
		key = tag
	}
	return crc16(key) % SlotCount
}

// SameSlot reports whether a and b hash to the same cluster slot, so that one
// script or transaction may touch both.
func SameSlot(a, b string) bool {
	return Slot(a) == Slot(b)
}

// TagInSlot returns a hash tag, braces included, that hashes to slot: the
// first of "{0}", "{1}", "{2}", … in that slot. A key starting with it lives
// in slot whatever follows, which places a key beside one whose own name
// cannot be wrapped in braces ("a}b" has no tag and holds a '}').
func TagInSlot(slot uint16) string {
	slot %= SlotCount
	for i := 0; ; i++ {
		s := strconv.Itoa(i)
		if crc16(s)%SlotCount == slot {
			return "{" + s + "}"
		}
	}
}

// crcTable holds CRC16-XMODEM of every byte value, for byte-at-a-time
// computation.
var crcTable = makeCRCTable()

func makeCRCTable() (t [256]uint16) {
	const poly = 0x1021
	for b := range t {
		crc := uint16(b) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ poly
			} else {
				crc <<= 1
			}
		}
		t[b] = crc
	}
	return t
}

// crc16 returns CRC16-XMODEM of s: polynomial 0x1021, initial value 0, no
// reflection, no final XOR.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc = crc<<8 ^ crcTable[byte(crc>>8)^s[i]]
	}
	return crc
}

// Beside returns key+suffix when that shares key's slot (key has a hash
// tag), else "{"+key+"}"+suffix when that does, else key+suffix: a name for
// a key that lives beside key in a cluster whenever that is possible.
func Beside(key, suffix string) string {
	if _, ok := HashTag(key); ok {
		return key + suffix
	}
	if k := "{" + key + "}" + suffix; SameSlot(k, key) {
		return k
	}
	return key + suffix
}

// SlotPrefix returns a prefix for keys that must live in key's slot
// whatever follows it: key itself when it has a hash tag, "{"+key+"}" when
// that hashes alike (key has no tag), else a tag found in key's slot
// followed by ":"+key (key has no tag and holds a '}').
func SlotPrefix(key string) string {
	if _, ok := HashTag(key); ok {
		return key
	}
	if k := "{" + key + "}"; SameSlot(k, key) {
		return k
	}
	return TagInSlot(Slot(key)) + ":" + key
}

// tagCache holds TagInSlot's answers: finding one takes thousands of CRCs.
var tagCache sync.Map // uint16 -> string

// Apart returns the name of a key that lives in key's cluster slot but
// outside key's namespace, so that a scan of key's prefix never meets it:
// "{"+key+"}:"+name when key holds no brace (the tag is key itself, so the
// slot is key's), else TagInSlot(Slot(key))+":"+name+":"+key. Distinct keys
// (or names without ':') give distinct results, so a user ID can never make
// one key's companion collide with another's.
func Apart(key, name string) string {
	if !strings.ContainsAny(key, "{}") && key != "" {
		return "{" + key + "}:" + name
	}
	slot := Slot(key)
	tag, ok := tagCache.Load(slot)
	if !ok {
		tag, _ = tagCache.LoadOrStore(slot, TagInSlot(slot))
	}
	return tag.(string) + ":" + name + ":" + key
}
