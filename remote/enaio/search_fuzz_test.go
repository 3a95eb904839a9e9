package enaio

import (
	"errors"
	"strings"
	"testing"

	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/enaio/enaiotest"
)

// FuzzSearchQuery: a search name either parses into a type and conditions
// whose operators the server knows, or is refused with ErrInvalidName;
// mapping the conditions onto a type's fields never fails otherwise.
func FuzzSearchQuery(f *testing.F) {
	for _, q := range []string{"Personaldokument?Abteilung=Vertrieb", "Rechnung?Jahr>=2024&Kunde=Meier*", "Akte", "?x=1",
		"T?a!b", "T?=1", "T?a<=", "T?OBJECT_ID!=5&b>c", "T?", "T?a=b=c"} {
		f.Add(q)
	}
	def := enaiotest.ObjDef().Cabinets[1].Objects[2] // Personaldokument
	f.Fuzz(func(t *testing.T, query string) {
		typ, conds, err := parseSearch(query)
		if err != nil {
			if !errors.Is(err, remote.ErrInvalidName) {
				t.Fatalf("%q: %v is no ErrInvalidName", query, err)
			}
			return
		}
		if strings.TrimSpace(typ) == "" {
			t.Fatalf("%q: no type", query)
		}
		for _, c := range conds {
			switch c.op {
			case "=", "!=", "<", "<=", ">", ">=":
			default:
				t.Fatalf("%q: operator %q", query, c.op)
			}
			if c.field == "" {
				t.Fatalf("%q: a condition without field", query)
			}
		}
		if _, err := conditions(def, conds); err != nil && !errors.Is(err, remote.ErrInvalidName) {
			t.Fatalf("%q: %v", query, err)
		}
	})
}
