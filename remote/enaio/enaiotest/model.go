package enaiotest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/dmsfs/dmsfs/remote/enaio/dmsxml"
)

// The DMS the server holds: a fixed object definition and objects with
// index data, files (content-addressed blobs on disk) and history.

// Type ids are main type << 16 | co type (spec §1).
const (
	TypeAkte     = 0<<16 | 1
	TypeRegister = 99<<16 | 2
	TypeDatei    = 4<<16 | 3 // W document (arbitrary files) with the Files table dmsfs keeps names in
	TypeScan     = 2<<16 | 4 // black-and-white image document without that table, as other clients make them
	TypePersonal = 0<<16 | 5
	TypePReg     = 99<<16 | 6
	TypePDok     = 4<<16 | 7
)

// ObjDef is the object definition the server reports.
func ObjDef() dmsxml.ObjDef {
	name := dmsxml.FieldDef{Name: "Name", Internal: "Name"}
	name.Flags.DataType = "X"
	col := func(n, internal, dt string) dmsxml.FieldDef {
		fd := dmsxml.FieldDef{Name: n, Internal: internal}
		fd.Flags.DataType = dt
		return fd
	}
	table := func(n, internal string, cols ...dmsxml.FieldDef) dmsxml.FieldDef {
		fd := dmsxml.FieldDef{Name: n, Internal: internal, Columns: cols}
		fd.Flags.DataType = "TABLE"
		return fd
	}
	// The table dmsfs keeps file names in (MTime: the POSIX mtime a
	// program set, optional for dmsfs).
	files := table("Dateien", "Files", col("Dateiname", "FileName", "X"), col("Größe", "Size", "9"),
		col("SHA-256", "SHA256", "X"), col("Geändert", "MTime", "X"))
	// An index table of the personnel documents: the trainings attended.
	courses := table("Schulungen", "Schulungen", col("Kurs", "Kurs", "X"), col("Datum", "Datum", "D"))
	// Index data of the personnel documents: typed, one of them mandatory.
	number := dmsxml.FieldDef{Name: "Personalnummer", Internal: "Personalnummer"}
	number.Flags.DataType = "9"
	date := dmsxml.FieldDef{Name: "Eintritt", Internal: "Eintritt"}
	date.Flags.DataType = "D"
	dept := dmsxml.FieldDef{Name: "Abteilung", Internal: "Abteilung"}
	dept.Flags.DataType, dept.Flags.Required = "X", "1"
	note := dmsxml.FieldDef{Name: "Bemerkung", Internal: "Bemerkung"}
	note.Flags.DataType = "X"
	obj := func(mt, co int, n, internal string, hist int, fs ...dmsxml.FieldDef) dmsxml.ObjectDef {
		return dmsxml.ObjectDef{MainType: mt, CoType: co, Name: n, Internal: internal, HistoryFlags: hist, Fields: fs}
	}
	return dmsxml.ObjDef{Version: "10.0", Cabinets: []dmsxml.Cabinet{
		{CoType: 1, Name: "Akten", Internal: "akten", Objects: []dmsxml.ObjectDef{
			obj(0, 1, "Akte", "Akte", 0, name),
			obj(99, 2, "Register", "Register", 0, name),
			obj(4, 3, "Datei", "Datei", 1, name, files, note),
			obj(2, 4, "Scan", "Scan", 1, name),
		}},
		{CoType: 5, Name: "Personal", Internal: "personal", Objects: []dmsxml.ObjectDef{
			obj(0, 5, "Personalakte", "Personalakte", 0, name),
			obj(99, 6, "Personalregister", "Personalregister", 0, name),
			obj(4, 7, "Personaldokument", "Personaldokument", 1, name, files, number, date, dept, courses),
		}},
	}}
}

// typeDef finds an object type by id.
func typeDef(id int) (dmsxml.Cabinet, dmsxml.ObjectDef, bool) {
	for _, c := range ObjDef().Cabinets {
		for _, o := range c.Objects {
			if o.TypeID() == id {
				return c, o, true
			}
		}
	}
	return dmsxml.Cabinet{}, dmsxml.ObjectDef{}, false
}

// typeByName finds an object type by its internal name in a cabinet (any
// cabinet when archive is empty).
func typeByName(archive, name string) (dmsxml.Cabinet, dmsxml.ObjectDef, bool) {
	for _, c := range ObjDef().Cabinets {
		if archive != "" && c.Internal != archive {
			continue
		}
		for _, o := range c.Objects {
			if o.Internal == name {
				return c, o, true
			}
		}
	}
	return dmsxml.Cabinet{}, dmsxml.ObjectDef{}, false
}

// Blob is one stored file.
type Blob struct {
	Ext    string `json:"ext"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Object is a folder, register or document.
type Object struct {
	ID       int               `json:"id"`
	Type     int               `json:"type"`
	Fields   map[string]string `json:"fields"`
	Tables   map[string][]Row  `json:"tables,omitempty"` // rows of the table fields
	Files    []Blob            `json:"files,omitempty"`
	Folder   int               `json:"folder,omitempty"`   // REG_STAID / SDSTA_ID
	Register int               `json:"register,omitempty"` // REG_PARID / SDREG_ID
	Time     int64             `json:"time"`               // OBJECT_TIME, the concurrency timestamp
	Created  time.Time         `json:"created"`
	Modified time.Time         `json:"modified"`
	Deleted  bool              `json:"deleted,omitempty"`
	History  []Mod             `json:"history,omitempty"` // oldest first
	// Annotations are drawn on an image document's pages.
	Annotations []Annotation `json:"annotations,omitempty"`
}

// Row is one row of a table field: column → value.
type Row map[string]string

// cloneTables copies an object's table rows.
func cloneTables(t map[string][]Row) map[string][]Row {
	out := make(map[string][]Row, len(t))
	for name, rows := range t {
		for _, r := range rows {
			out[name] = append(out[name], Row(maps(r)))
		}
	}
	return out
}

// Mod is a history entry; version entries keep the files as they were.
type Mod struct {
	GUID   string    `json:"guid"`
	Time   time.Time `json:"time"`
	Action int       `json:"action"`
	Text   string    `json:"text"`
	User   string    `json:"user"`
	Files  []Blob    `json:"files,omitempty"`
}

type state struct {
	NextID  int             `json:"next_id"`
	Objects map[int]*Object `json:"objects"`
}

func newGUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return fmt.Sprintf("%X", b)
}

func hexSum(b []byte) string { return hex.EncodeToString(b) }

// load reads the state file; a missing one is a fresh DMS.
func load(dir string) (*state, error) {
	st := &state{NextID: 1000, Objects: map[int]*Object{}}
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if os.IsNotExist(err) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("enaiotest state %s: %w", dir, err)
	}
	return st, nil
}

// save writes the state atomically.
func (st *state) save(dir string) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "state.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "state.json"))
}
