package enaio

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/enaio/dmsxml"
	"github.com/dmsfs/dmsfs/remote/enaio/rpc"
)

// An object's index data are its fields (user.dms.field.<internal name>):
// the fields its type defines, but the title (the file's name: rename it
// instead) and table fields (not mapped yet). A change sends dms.XMLUpdate
// with just that field and the object's concurrency timestamp (ECMind's
// update() sends only changed fields). The server's rules are kept:
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
	n, err := r.change(ctx, o, jobXMLUpdate, "", dmsxml.DataObject{Fields: []dmsxml.ValueField{field}}, nil,
		func(n object, err error) bool { return err == nil && n.fields[name] == field.Text })
	var f *rpc.Failure
	if errors.As(err, &f) && !errors.Is(err, remote.ErrConflict) && !errors.Is(err, remote.ErrNotFound) {
		// The object is as it was: the server refused the value (a
		// mandatory field cleared, a rule of the type).
		return remote.Node{}, fmt.Errorf("enaio refused %s = %q: %s: %w", name, field.Text, f.Reply.Message(), remote.ErrInvalidName)
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
