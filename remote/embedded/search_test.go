package embedded

import (
	"errors"
	"testing"

	"github.com/dmsfs/dmsfs/remote"
)

// FuzzSearchQuery: any query either compiles or is refused with
// ErrInvalidName, and a compiled one tests any document without failing.
func FuzzSearchQuery(f *testing.F) {
	for _, q := range []string{"*.pdf", "author=Meier", "*.odt&author=M*", "[", "=x", "a=[", "&&", "", "x=y=z"} {
		f.Add(q, "report.pdf", "Meier")
	}
	f.Fuzz(func(t *testing.T, query, name, value string) {
		match, err := parseQuery(query)
		if err != nil {
			if !errors.Is(err, remote.ErrInvalidName) {
				t.Fatalf("query %q: %v is no ErrInvalidName", query, err)
			}
			return
		}
		match(&record{Name: name, Fields: map[string]string{"author": value}})
	})
}

func TestSearchQuery(t *testing.T) {
	doc := &record{Name: "report.pdf", Fields: map[string]string{"author": "Meier"}}
	for q, want := range map[string]bool{"*.pdf": true, "*.odt": false, "author=Meier": true, "author=Sch*": false,
		"*.pdf&author=M*": true, "*.pdf&year=2024": false, "report.pdf": true} {
		match, err := parseQuery(q)
		if err != nil {
			t.Fatalf("%q: %v", q, err)
		}
		if match(doc) != want {
			t.Errorf("%q: want %v", q, want)
		}
	}
	for _, q := range []string{"", "[", "=x", "a=["} {
		if _, err := parseQuery(q); !errors.Is(err, remote.ErrInvalidName) {
			t.Errorf("%q: want ErrInvalidName, got %v", q, err)
		}
	}
}
