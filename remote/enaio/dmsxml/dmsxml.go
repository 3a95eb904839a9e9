// Package dmsxml holds the XML documents enaio's jobs exchange (spec §3):
// DMSQuery (dms.GetResultList's request), DMSContent in the HOL format (its
// answer), DMSData (dms.XMLInsert/XMLUpdate/XMLDelete/XMLMove), asobjdef
// (dms.GetObjDef) and DMSHistory (dms.GetObjectHistory). Client and test
// server share these types, so each layout decision lives in one place; the
// ones the spec marks unverified say so.
package dmsxml

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Object types as the XML names them.
const (
	Folder   = "FOLDER"
	Register = "REGISTER"
	Document = "DOCUMENT"
)

// System fields dmsfs reads (spec §1).
const (
	ObjectID       = "OBJECT_ID"
	ObjectTime     = "OBJECT_TIME" // the concurrency timestamp (UNVERIFIED that it is the one XMLUpdate compares)
	ObjectModify   = "OBJECT_MODIFYTIME"
	ObjectCreated  = "OBJECT_CRDATE"
	ObjectFileSize = "OBJECT_FILESIZE"
	ObjectDeleted  = "OBJECT_DELETED"
	RegFolder      = "REG_STAID" // a register's folder
	RegParent      = "REG_PARID" // a register's parent register
	DocFolder      = "SDSTA_ID"  // a document's folder
	DocRegister    = "SDREG_ID"  // a document's register
)

// Query is a DMSQuery.
type Query struct {
	XMLName     xml.Name       `xml:"DMSQuery"`
	RequestType string         `xml:"requesttype,attr,omitempty"`
	Archives    []QueryArchive `xml:"Archive"`
}

type QueryArchive struct {
	InternalName string            `xml:"internal_name,attr,omitempty"`
	ObjectTypes  []QueryObjectType `xml:"ObjectType"`
}

type QueryObjectType struct {
	InternalName string `xml:"internal_name,attr"`
	Type         string `xml:"type,attr,omitempty"`
	Fields       struct {
		Schema string       `xml:"field_schema,attr,omitempty"`
		Fields []QueryField `xml:"Field"`
	} `xml:"Fields"`
	Conditions []ConditionObject `xml:"Conditions>ConditionObject"`
}

type QueryField struct {
	InternalName string `xml:"internal_name,attr"`
	System       string `xml:"system,attr,omitempty"`
	SortPos      string `xml:"sortpos,attr,omitempty"`
	SortOrder    string `xml:"sortorder,attr,omitempty"`
}

type ConditionObject struct {
	InternalName string           `xml:"internal_name,attr"`
	Fields       []FieldCondition `xml:"FieldCondition"`
}

// FieldCondition compares a field with Values; Null (<NULL/>) matches an
// unset field.
type FieldCondition struct {
	InternalName string    `xml:"internal_name,attr"`
	System       string    `xml:"system,attr,omitempty"`
	Operator     string    `xml:"operator,attr"`
	Values       []string  `xml:"Value"`
	Null         *struct{} `xml:"NULL"`
}

// Content is a DMSContent answer in the HOL format.
type Content struct {
	XMLName  xml.Name         `xml:"DMSContent"`
	Format   string           `xml:"format,attr,omitempty"`
	Archives []ContentArchive `xml:"Archive"`
}

type ContentArchive struct {
	Name        string              `xml:"name,attr,omitempty"`
	ID          string              `xml:"id,attr,omitempty"`
	ObjectTypes []ContentObjectType `xml:"ObjectType"`
}

type ContentObjectType struct {
	Name     string          `xml:"name,attr,omitempty"`
	ID       int             `xml:"id,attr"`
	MainType int             `xml:"maintype,attr"`
	CoType   int             `xml:"cotype,attr"`
	Type     string          `xml:"type,attr,omitempty"`
	Objects  []ContentObject `xml:"ObjectList>Object"`
}

type ContentObject struct {
	ID     int          `xml:"id,attr"`
	Fields []ValueField `xml:"Fields>Field"`
	// The spec gives HOL table fields only as "<TableFields>…"; they are
	// read in DMSData's row layout (UNVERIFIED against a real server).
	Tables []TableField `xml:"TableFields>TableField"`
}

// ValueField is a field with its value: system fields carry the raw value
// in the value attribute and a display text as content.
type ValueField struct {
	Name         string `xml:"name,attr,omitempty"`
	InternalName string `xml:"internal_name,attr"`
	System       string `xml:"system,attr,omitempty"`
	DataType     string `xml:"datatype,attr,omitempty"`
	Raw          string `xml:"value,attr,omitempty"`
	Text         string `xml:",chardata"`
	// FieldFunction "NULL" clears a field (DMSData).
	FieldFunction string `xml:"field_function,attr,omitempty"`
}

// Value is the raw value where there is one, else the text.
func (f ValueField) Value() string {
	if f.Raw != "" {
		return f.Raw
	}
	return f.Text
}

type TableField struct {
	InternalName string `xml:"internal_name,attr"`
	Rows         []Row  `xml:"Row"`
}

type Row struct {
	Line   int          `xml:"line,attr,omitempty"`
	Fields []ValueField `xml:"Field"`
}

// Get returns a row's column.
func (r Row) Get(name string) string {
	for _, f := range r.Fields {
		if f.InternalName == name {
			return f.Value()
		}
	}
	return ""
}

// Field returns an object's field value.
func (o ContentObject) Field(name string) (string, bool) {
	for _, f := range o.Fields {
		if f.InternalName == name {
			return f.Value(), true
		}
	}
	return "", false
}

// Table returns an object's table field.
func (o ContentObject) Table(name string) (TableField, bool) {
	for _, t := range o.Tables {
		if t.InternalName == name {
			return t, true
		}
	}
	return TableField{}, false
}

// Data is a DMSData document.
type Data struct {
	XMLName  xml.Name      `xml:"DMSData"`
	Archives []DataArchive `xml:"Archive"`
}

type DataArchive struct {
	InternalName string           `xml:"internal_name,attr,omitempty"`
	ObjectTypes  []DataObjectType `xml:"ObjectType"`
}

type DataObjectType struct {
	InternalName string       `xml:"internal_name,attr"`
	Type         string       `xml:"type,attr,omitempty"`
	Objects      []DataObject `xml:"Object"`
}

// DataObject is one object to insert, update, delete or move. Numeric
// attributes are -1 when unset (spec §3.6), or omitted.
type DataObject struct {
	ObjectID     int          `xml:"object_id,attr,omitempty"`
	FolderID     int          `xml:"folder_id,attr,omitempty"`
	FolderType   int          `xml:"folder_type,attr,omitempty"`
	RegisterID   int          `xml:"register_id,attr,omitempty"`
	RegisterType int          `xml:"register_type,attr,omitempty"`
	Timestamp    string       `xml:"concurrency_timestamp,attr,omitempty"`
	Fields       []ValueField `xml:"Fields>Field"`
	Tables       []TableField `xml:"TableFields>TableField"`
}

// One returns the single object a DMSData holds, with its archive and type.
func (d Data) One() (archive, objType string, o DataObject, err error) {
	if len(d.Archives) != 1 || len(d.Archives[0].ObjectTypes) != 1 || len(d.Archives[0].ObjectTypes[0].Objects) != 1 {
		return "", "", o, fmt.Errorf("DMSData must hold exactly one object")
	}
	a := d.Archives[0]
	t := a.ObjectTypes[0]
	return a.InternalName, t.InternalName, t.Objects[0], nil
}

// NewData wraps one object.
func NewData(archive, objType, kind string, o DataObject) Data {
	return Data{Archives: []DataArchive{{InternalName: archive, ObjectTypes: []DataObjectType{{InternalName: objType, Type: kind, Objects: []DataObject{o}}}}}}
}

// ObjDef is dms.GetObjDef's asobjdef document.
type ObjDef struct {
	XMLName  xml.Name  `xml:"asobjdef"`
	Version  string    `xml:"version,attr,omitempty"`
	Cabinets []Cabinet `xml:"cabinet"`
}

type Cabinet struct {
	CoType   int         `xml:"cotype,attr"`
	Name     string      `xml:"name,attr"`
	Internal string      `xml:"internal,attr"`
	Objects  []ObjectDef `xml:"object"`
}

type ObjectDef struct {
	MainType     int        `xml:"maintype,attr"`
	CoType       int        `xml:"cotype,attr"`
	Name         string     `xml:"name,attr"`
	Internal     string     `xml:"internal,attr"`
	HistoryFlags int        `xml:"historyflags,attr"`
	Fields       []FieldDef `xml:"fields>field"`
}

// TypeID is main type << 16 | co type.
func (o ObjectDef) TypeID() int { return o.MainType<<16 | o.CoType }

// Kind is FOLDER, REGISTER or DOCUMENT.
func (o ObjectDef) Kind() string {
	switch o.MainType {
	case 0:
		return Folder
	case 99:
		return Register
	}
	return Document
}

type FieldDef struct {
	Name     string `xml:"name,attr"`
	Internal string `xml:"internal,attr"`
	Flags    struct {
		// DataType: X text, 9 integer, D date, TABLE (this package's
		// reading of objdef's dt; spec §3.1).
		DataType string `xml:"dt,attr"`
		Required string `xml:"required,attr,omitempty"`
	} `xml:"flags"`
	// Table fields list their columns (<listctrl>, spec §3.1).
	Columns []FieldDef `xml:"listctrl>column"`
}

// History is dms.GetObjectHistory's DMSHistory document, newest first.
type History struct {
	XMLName       xml.Name       `xml:"DMSHistory"`
	Timestamp     string         `xml:"timestamp,attr,omitempty"`
	Modifications []Modification `xml:"Modification"`
}

type Modification struct {
	GUID   string `xml:"osguid,attr"`
	Time   string `xml:"Time"` // dd.mm.yyyy HH:MM:SS
	Action struct {
		ID   int    `xml:"id,attr"`
		Text string `xml:",chardata"`
	} `xml:"Action"`
	Description string `xml:"Description"`
	User        string `xml:"UserNameShort"`
}

// ActionVersionCreated marks a history entry that saved a version of the
// document's files (ECMind's VERSION_CREATED).
const ActionVersionCreated = 17

// Marshal encodes v with an XML declaration.
func Marshal(v any) ([]byte, error) {
	b, err := xml.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), b...), nil
}

// Unmarshal decodes XML that may come as UTF-8 or as UTF-16 with a byte
// order mark (enaio answers in UTF-16 unless asked for UTF-8).
func Unmarshal(b []byte, v any) error {
	b, err := toUTF8(b)
	if err != nil {
		return err
	}
	// After conversion the declaration may still say UTF-16, which
	// encoding/xml refuses; the text is UTF-8 now, so it goes.
	return xml.Unmarshal(stripDeclaration(b), v)
}

func stripDeclaration(b []byte) []byte {
	s := bytes.TrimLeft(b, " \t\r\n")
	if bytes.HasPrefix(s, []byte("<?xml")) {
		if i := bytes.Index(s, []byte("?>")); i >= 0 {
			return s[i+2:]
		}
	}
	return b
}

// Text is what an XML document says, its elements' character data and
// attribute values joined, at most 500 bytes: enaio's XML error files
// have no documented layout. Bytes that are not XML come back as they are.
func Text(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return ""
	}
	u, err := toUTF8(b)
	if err != nil {
		u = b
	}
	var parts []string
	d := xml.NewDecoder(bytes.NewReader(stripDeclaration(u)))
	for {
		tok, err := d.Token()
		if err != nil {
			break
		}
		switch t := tok.(type) {
		case xml.StartElement:
			for _, a := range t.Attr {
				if v := strings.TrimSpace(a.Value); v != "" {
					parts = append(parts, v)
				}
			}
		case xml.CharData:
			if v := strings.TrimSpace(string(t)); v != "" {
				parts = append(parts, v)
			}
		}
	}
	out := strings.Join(parts, " ")
	if out == "" {
		out = strings.ToValidUTF8(string(u), "?")
	}
	if len(out) > 500 {
		out = strings.ToValidUTF8(out[:500], "") + "…"
	}
	return out
}

// toUTF8 converts UTF-16 (with BOM) to UTF-8 and drops a UTF-8 BOM.
func toUTF8(b []byte) ([]byte, error) {
	switch {
	case bytes.HasPrefix(b, []byte{0xEF, 0xBB, 0xBF}):
		return b[3:], nil
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE}), bytes.HasPrefix(b, []byte{0xFE, 0xFF}):
		le := b[0] == 0xFF
		b = b[2:]
		if len(b)%2 != 0 {
			return nil, fmt.Errorf("UTF-16 text of odd length")
		}
		u := make([]uint16, len(b)/2)
		for i := range u {
			if le {
				u[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
			} else {
				u[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
			}
		}
		return []byte(string(utf16.Decode(u))), nil
	}
	if !utf8.Valid(b) {
		return nil, fmt.Errorf("XML that is neither UTF-8 nor UTF-16 with a byte order mark")
	}
	return b, nil
}

// UTF16 encodes text as UTF-16LE with a byte order mark, as enaio does by
// default.
func UTF16(s string) []byte {
	s = strings.Replace(s, `encoding="UTF-8"`, `encoding="UTF-16"`, 1)
	u := utf16.Encode([]rune(s))
	b := []byte{0xFF, 0xFE}
	for _, c := range u {
		b = append(b, byte(c), byte(c>>8))
	}
	return b
}
