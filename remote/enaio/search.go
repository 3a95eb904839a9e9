package enaio

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/enaio/dmsxml"
	"github.com/dmsfs/dmsfs/remote/enaio/rpc"
)

var _ remote.Searcher = (*Repo)(nil)

// Search runs dms.GetResultList for the object type and index field
// conditions of query, TYPE?FIELD=VALUE&FIELD>VALUE… (spec §3.2): TYPE is
// an object type's name or internal name, FIELD an index field's (or a
// system field such as OBJECT_ID), the operators =, !=, <, <=, >, >=.
// Without conditions it finds every object of the type. Below a cabinet
// only that cabinet's types are searched, below a folder or register only
// the documents that lie in it; results are documents with files.
func (r *Repo) Search(ctx context.Context, under remote.ID, query string) ([]remote.Node, error) {
	typ, conds, err := parseSearch(query)
	if err != nil {
		return nil, err
	}
	kind, cabName, n, err := parseID(under)
	if err != nil {
		return nil, err
	}
	var inFolder, inRegister int
	if kind == "object" {
		o, err := r.object(ctx, under)
		if err != nil {
			return nil, err
		}
		cabName = o.cab.Internal
		switch o.def.Kind() {
		case dmsxml.Folder:
			inFolder = n
		case dmsxml.Register:
			inRegister = n
		default:
			return nil, fmt.Errorf("%w: %s is a document", remote.ErrNotFolder, under)
		}
	}
	var found bool
	var out []remote.Node
	for _, cab := range r.def.Cabinets {
		if cabName != "" && cab.Internal != cabName {
			continue
		}
		for _, def := range cab.Objects {
			if def.Name != typ && def.Internal != typ {
				continue
			}
			found = true
			if def.Kind() != dmsxml.Document {
				return nil, fmt.Errorf("%w: %q is a type of %s, not of documents", remote.ErrInvalidName, typ, strings.ToLower(def.Kind()))
			}
			fc, err := conditions(def, conds)
			if err != nil {
				return nil, err
			}
			if inFolder != 0 {
				fc = append(fc, dmsxml.FieldCondition{InternalName: dmsxml.DocFolder, System: "1", Operator: "=", Values: []string{strconv.Itoa(inFolder)}})
			}
			if inRegister != 0 {
				fc = append(fc, dmsxml.FieldCondition{InternalName: dmsxml.DocRegister, System: "1", Operator: "=", Values: []string{strconv.Itoa(inRegister)}})
			}
			os, err := r.query(ctx, cab, def, fc...)
			var refused *rpc.Failure
			if errors.As(err, &refused) {
				return nil, fmt.Errorf("%w: the server refuses the query: %s", remote.ErrInvalidName, refused.Reply.Message())
			}
			if err != nil {
				return nil, err
			}
			for _, o := range os {
				o, err := r.named(ctx, o)
				if err != nil {
					return nil, err
				}
				if len(o.Files) > 0 {
					out = append(out, o.Node)
				}
			}
		}
	}
	if !found {
		return nil, fmt.Errorf("%w: no document type %q here", remote.ErrInvalidName, typ)
	}
	return out, nil
}

// searchCond is one FIELD OP VALUE of a query.
type searchCond struct{ field, op, value string }

// parseSearch splits TYPE?COND&COND… into the type and the conditions.
func parseSearch(query string) (string, []searchCond, error) {
	typ, rest, _ := strings.Cut(query, "?")
	typ = strings.TrimSpace(typ)
	if typ == "" {
		return "", nil, fmt.Errorf("%w: query %q names no object type (TYPE?FIELD=VALUE)", remote.ErrInvalidName, query)
	}
	var conds []searchCond
	if rest == "" {
		return typ, nil, nil
	}
	for _, term := range strings.Split(rest, "&") {
		i := strings.IndexAny(term, "=<>!")
		if i <= 0 {
			return "", nil, fmt.Errorf("%w: %q is no FIELD=VALUE condition", remote.ErrInvalidName, term)
		}
		op := term[i:min(i+2, len(term))]
		switch op {
		case ">=", "<=", "!=":
		default:
			op = term[i : i+1]
			if op == "!" {
				return "", nil, fmt.Errorf("%w: %q: ! without =", remote.ErrInvalidName, term)
			}
		}
		field := strings.TrimSpace(term[:i])
		if field == "" {
			return "", nil, fmt.Errorf("%w: %q names no field", remote.ErrInvalidName, term)
		}
		conds = append(conds, searchCond{field: field, op: op, value: term[i+len(op):]})
	}
	return typ, conds, nil
}

// conditions maps a query's conditions onto def's fields.
func conditions(def dmsxml.ObjectDef, conds []searchCond) ([]dmsxml.FieldCondition, error) {
	var out []dmsxml.FieldCondition
	for _, c := range conds {
		fc := dmsxml.FieldCondition{Operator: c.op, Values: []string{c.value}}
		if strings.HasPrefix(c.field, "OBJECT_") {
			fc.InternalName, fc.System = c.field, "1"
			out = append(out, fc)
			continue
		}
		var fd *dmsxml.FieldDef
		for i := range def.Fields {
			if f := &def.Fields[i]; f.Internal == c.field || f.Name == c.field {
				fd = f
				break
			}
		}
		if fd == nil || fd.Flags.DataType == "TABLE" {
			return nil, fmt.Errorf("%w: %s has no index field %q", remote.ErrInvalidName, def.Name, c.field)
		}
		fc.InternalName = fd.Internal
		out = append(out, fc)
	}
	return out, nil
}
