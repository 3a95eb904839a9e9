package enaio

import (
	"testing"

	"github.com/dmsfs/dmsfs/remote/enaio/dmsxml"
)

// FuzzTableRows: rows written to a table field are JSON from anyone;
// parseTable refuses what it cannot take and never panics, and what it
// takes reads back through tableText as rows of the columns given.
func FuzzTableRows(f *testing.F) {
	f.Add(`[{"Kurs":"Erste Hilfe","Datum":"2024-03-01"},{"Kurs":"Brandschutz"}]`)
	f.Add(`[{"Kurs":12.5e3,"Datum":null}]`)
	f.Add(`[[1]]`)
	f.Add(`[{"Raum":"3"}] trailing`)
	kurs := dmsxml.FieldDef{Name: "Kurs", Internal: "Kurs"}
	kurs.Flags.DataType = "X"
	datum := dmsxml.FieldDef{Name: "Datum", Internal: "Datum"}
	datum.Flags.DataType = "D"
	fd := dmsxml.FieldDef{Name: "Schulungen", Internal: "Schulungen", Columns: []dmsxml.FieldDef{kurs, datum}}
	f.Fuzz(func(t *testing.T, v string) {
		rows, err := parseTable(fd, v)
		if err != nil {
			return
		}
		for _, r := range rows {
			for _, c := range r.Fields {
				if c.InternalName != "Kurs" && c.InternalName != "Datum" {
					t.Fatalf("column %q taken", c.InternalName)
				}
			}
		}
		tableText(dmsxml.TableField{InternalName: fd.Internal, Rows: rows})
	})
}
