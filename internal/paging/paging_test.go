package paging

import (
	"errors"
	"testing"
)

func TestSeq(t *testing.T) {
	type page struct{ items, next string }
	pages := map[string]page{"": {"a", "1"}, "1": {"b", "2"}, "2": {"c", ""}}
	read := func(c string) (page, error) {
		if c == "bad" {
			return page{}, errors.New("boom")
		}
		return pages[c], nil
	}
	next := func(p page) string { return p.next }
	var got string
	for p, err := range Seq("", read, next) {
		if err != nil {
			t.Fatal(err)
		}
		got += p.items
	}
	if got != "abc" {
		t.Fatalf("pages %q, want abc", got)
	}
	n := 0
	for range Seq("", read, next) {
		n++
		break // the iteration stops at once
	}
	errs := 0
	for _, err := range Seq("bad", read, next) {
		if err == nil {
			t.Fatal("no error")
		}
		errs++
	}
	if n != 1 || errs != 1 {
		t.Fatalf("after break %d pages, errors %d", n, errs)
	}
}
