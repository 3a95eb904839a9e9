package enaio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/enaio/dmsxml"
	"github.com/dmsfs/dmsfs/remote/enaio/rpc"
)

// An object's index data are its fields (user.dms.field.<internal name>):
// the fields its type defines, but the title (the file's name: rename it
// instead) and the files table (dmsfs's record of file names). A table
// field is its rows as JSON, [{"column":"value",…},…], columns by
// internal name. A change sends dms.XMLUpdate with just that field (a
// table with all its rows and REPLACETABLEFIELDS=1) and the object's
// concurrency timestamp (ECMind's update() sends only changed fields).
// remote.MtimeField lives in the files table's MTime column, where the
// type has one. The server's rules are kept:
//   - system fields are refused (ErrRefused: EPERM) except the three it takes
//     from clients, OBJECT_FOREIGNID, OBJECT_SYSTEMID and OBJECT_USERGUID;
//   - a field the type lacks is ErrUnsupported (object types are fixed);
//   - a value the field's type cannot hold (a number, a date) is
//     ErrInvalidName before anything is sent;
//   - the server's refusal of a mandatory field cleared is ErrInvalidName
//     with its message.

var _ remote.Fields = (*Repo)(nil)

// clientSystemFields are the system fields a client may set.
var clientSystemFields = map[string]bool{"OBJECT_FOREIGNID": true, "OBJECT_SYSTEMID": true, "OBJECT_USERGUID": true}

// mtimeColumn is the optional column of the files table that keeps a
// file's POSIX mtime (RFC 3339), written with its row.
const mtimeColumn = "MTime"

// tableField finds a type's table field by internal name.
func tableField(def dmsxml.ObjectDef, name string) (dmsxml.FieldDef, bool) {
	for _, fd := range def.Fields {
		if fd.Internal == name && fd.Columns != nil {
			return fd, true
		}
	}
	return dmsxml.FieldDef{}, false
}

// tableText shows a table field's rows as JSON objects of their non-empty
// columns (keys sorted, so equal rows read equal).
func tableText(t dmsxml.TableField) string {
	out := make([]map[string]string, 0, len(t.Rows))
	for _, r := range t.Rows {
		row := map[string]string{}
		for _, f := range r.Fields {
			if v := f.Value(); v != "" {
				row[f.InternalName] = v
			}
		}
		out = append(out, row)
	}
	b, _ := json.Marshal(out)
	return string(b)
}

// parseTable reads rows written to a table field and checks them against
// its columns: a JSON array of objects whose values are strings or
// numbers.
func parseTable(fd dmsxml.FieldDef, v string) ([]dmsxml.Row, error) {
	var in []map[string]any
	dec := json.NewDecoder(strings.NewReader(v))
	dec.UseNumber()
	if err := dec.Decode(&in); err != nil || dec.More() {
		return nil, fmt.Errorf(`%s is a table: give its rows as JSON, [{"column":"value",…}]: %w`, fd.Name, remote.ErrInvalidName)
	}
	var out []dmsxml.Row
	for i, r := range in {
		cols := make([]string, 0, len(r))
		for c := range r {
			cols = append(cols, c)
		}
		sort.Strings(cols)
		row := dmsxml.Row{Line: i + 1}
		for _, c := range cols {
			var cd *dmsxml.FieldDef
			for j := range fd.Columns {
				if fd.Columns[j].Internal == c {
					cd = &fd.Columns[j]
				}
			}
			if cd == nil {
				return nil, fmt.Errorf("%s has no column %q: %w", fd.Name, c, remote.ErrInvalidName)
			}
			var text string
			switch x := r[c].(type) {
			case string:
				text = x
			case json.Number:
				text = x.String()
			case nil:
				continue
			default:
				return nil, fmt.Errorf("%s row %d column %s: a value is a string or a number: %w", fd.Name, i+1, c, remote.ErrInvalidName)
			}
			if err := checkValue(*cd, text); err != nil {
				return nil, err
			}
			row.Fields = append(row.Fields, dmsxml.ValueField{InternalName: c, Text: text})
		}
		out = append(out, row)
	}
	return out, nil
}

// indexField finds a type's non-table field by internal name.
func indexField(def dmsxml.ObjectDef, name string) (dmsxml.FieldDef, bool) {
	for _, fd := range def.Fields {
		if fd.Internal == name && fd.Columns == nil && fd.Flags.DataType != "TABLE" {
			return fd, true
		}
	}
	return dmsxml.FieldDef{}, false
}

func (r *Repo) Fields(ctx context.Context, id remote.ID) (map[string]string, error) {
	kind, _, oid, err := parseID(id)
	if err != nil {
		return nil, err
	}
	if kind != "object" {
		return map[string]string{}, nil // the root and cabinets keep none
	}
	o, err := r.obj(ctx, oid)
	if err != nil {
		return nil, err
	}
	return o.fields, nil
}

// checkValue tells a value the field's type cannot hold.
func checkValue(fd dmsxml.FieldDef, v string) error {
	switch fd.Flags.DataType {
	case "9":
		if _, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err != nil {
			return fmt.Errorf("%s: %q is no whole number: %w", fd.Name, v, remote.ErrInvalidName)
		}
	case "D":
		_, err1 := time.Parse("2006-01-02", v)
		_, err2 := time.Parse("02.01.2006", v)
		if err1 != nil && err2 != nil {
			return fmt.Errorf("%s: %q is no date (yyyy-mm-dd or dd.mm.yyyy): %w", fd.Name, v, remote.ErrInvalidName)
		}
	}
	return nil
}

func (r *Repo) SetField(ctx context.Context, id remote.ID, token, name string, value *string) (remote.Node, error) {
	kind, _, oid, err := parseID(id)
	if err != nil {
		return remote.Node{}, err
	}
	if kind != "object" {
		return remote.Node{}, fmt.Errorf("enaio: the root and cabinets have no index data: %w", remote.ErrUnsupported)
	}
	o, err := r.obj(ctx, oid)
	if err != nil {
		return remote.Node{}, err
	}
	if o.Token != token {
		return remote.Node{}, fmt.Errorf("%w: %s changed (timestamp %s, the change was based on %s)", remote.ErrConflict, o.Name, o.Token, token)
	}
	if name == remote.MtimeField {
		return r.setMtime(ctx, o, value)
	}
	if td, ok := tableField(o.def, name); ok {
		return r.setTable(ctx, o, td, value)
	}
	field := dmsxml.ValueField{InternalName: name}
	fd, isIndex := indexField(o.def, name)
	switch {
	case clientSystemFields[name]:
		field.System = "1"
	case strings.HasPrefix(name, "OBJECT_") || name == dmsxml.RegFolder || name == dmsxml.RegParent ||
		name == dmsxml.DocFolder || name == dmsxml.DocRegister:
		return remote.Node{}, fmt.Errorf("enaio: system field %s is the server's: %w", name, remote.ErrRefused)
	case !isIndex:
		return remote.Node{}, fmt.Errorf("enaio: type %q has no field %s: %w", o.def.Name, name, remote.ErrUnsupported)
	case name == r.cfg.TitleField:
		return remote.Node{}, fmt.Errorf("enaio: %s is the name; rename the file instead: %w", name, remote.ErrRefused)
	}
	if value == nil {
		field.FieldFunction = "NULL"
	} else {
		if isIndex {
			if err := checkValue(fd, *value); err != nil {
				return remote.Node{}, err
			}
		}
		field.Text = *value
	}
	return r.update(ctx, o, "", dmsxml.DataObject{Fields: []dmsxml.ValueField{field}}, name, field.Text,
		func(n object, err error) bool { return err == nil && n.fields[name] == field.Text })
}

// setTable replaces a table field's rows (nil: clears it).
func (r *Repo) setTable(ctx context.Context, o object, fd dmsxml.FieldDef, value *string) (remote.Node, error) {
	if fd.Internal == r.cfg.FilesTable {
		return remote.Node{}, fmt.Errorf("enaio: %s is dmsfs's record of the file names: %w", fd.Internal, remote.ErrRefused)
	}
	var rs []dmsxml.Row
	text := ""
	if value != nil {
		var err error
		if rs, err = parseTable(fd, *value); err != nil {
			return remote.Node{}, err
		}
		text = *value
	}
	do := dmsxml.DataObject{Tables: []dmsxml.TableField{{InternalName: fd.Internal, Rows: rs}}}
	return r.update(ctx, o, "REPLACETABLEFIELDS=1", do, fd.Internal, text, func(n object, err error) bool {
		return err == nil && n.Token != o.Token && (n.fields[fd.Internal] != "") == (len(rs) > 0)
	})
}

// setMtime keeps a single file's mtime in the files table's MTime column
// ("<time> <content ID>", remote.MtimeField; nil clears it). A content
// ID other than the file's is a conflict: the content changed meanwhile.
func (r *Repo) setMtime(ctx context.Context, o object, value *string) (remote.Node, error) {
	td, ok := tableField(o.def, r.cfg.FilesTable)
	hasColumn := false
	for _, c := range td.Columns {
		hasColumn = hasColumn || c.Internal == mtimeColumn
	}
	if !ok || !hasColumn || !o.table || len(o.Files) != 1 {
		return remote.Node{}, fmt.Errorf("enaio: %s keeps no mtime (one file and a %s column in its %s table needed): %w",
			o.Name, mtimeColumn, r.cfg.FilesTable, remote.ErrUnsupported)
	}
	mt := ""
	if value != nil {
		ts, content, _ := strings.Cut(*value, " ")
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			return remote.Node{}, fmt.Errorf("%s: %q is no \"<RFC 3339 time> <content id>\": %w", remote.MtimeField, *value, remote.ErrInvalidName)
		}
		if content != o.Files[0].ContentID {
			return remote.Node{}, fmt.Errorf("%w: the content of %s changed since its mtime was set", remote.ErrConflict, o.Name)
		}
		mt = ts
	}
	o.mtimes = []string{mt}
	do := dmsxml.DataObject{Tables: r.table(rows(o))}
	want := ""
	if value != nil {
		want = *value
	}
	return r.update(ctx, o, "REPLACETABLEFIELDS=1", do, remote.MtimeField, want, func(n object, err error) bool {
		return err == nil && n.fields[remote.MtimeField] == want
	})
}

// update sends one field's change and tells the server's refusal of the
// value from other failures.
func (r *Repo) update(ctx context.Context, o object, options string, do dmsxml.DataObject, name, text string, done func(object, error) bool) (remote.Node, error) {
	n, err := r.change(ctx, o, jobXMLUpdate, options, do, nil, done)
	var f *rpc.Failure
	if errors.As(err, &f) && !errors.Is(err, remote.ErrConflict) && !errors.Is(err, remote.ErrNotFound) {
		// The object is as it was: the server refused the value (a
		// mandatory field cleared, a rule of the type).
		return remote.Node{}, fmt.Errorf("enaio refused %s = %q: %s: %w", name, text, f.Reply.Message(), remote.ErrInvalidName)
	}
	if err != nil {
		return remote.Node{}, err
	}
	return n.Node, nil
}

var _ remote.FieldNamer = (*Repo)(nil)

// FieldNames are the object type's index fields but the title, free text
// that may be empty first.
func (r *Repo) FieldNames(ctx context.Context, id remote.ID) ([]string, error) {
	kind, _, oid, err := parseID(id)
	if err != nil || kind != "object" {
		return nil, err
	}
	o, err := r.obj(ctx, oid)
	if err != nil {
		return nil, err
	}
	var free, other []string
	for _, fd := range o.def.Fields {
		if fd.Columns != nil && fd.Internal != r.cfg.FilesTable {
			other = append(other, fd.Internal)
			continue
		}
		if _, ok := indexField(o.def, fd.Internal); !ok || fd.Internal == r.cfg.TitleField {
			continue
		}
		if fd.Flags.DataType == "X" && fd.Flags.Required != "1" {
			free = append(free, fd.Internal)
		} else {
			other = append(other, fd.Internal)
		}
	}
	return append(free, other...), nil
}
