package enaio

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/enaio/dmsxml"
	"github.com/dmsfs/dmsfs/remote/enaio/rpc"
)

// Writes go through dms.XMLInsert, dms.XMLUpdate, dms.XMLMove and
// dms.XMLDelete with the object's concurrency timestamp. None of them can
// be repeated blindly: when the connection breaks after the request went
// out, the object is looked up to see whether the job ran, and only if it
// did not is it sent again.

// maxTries bounds how often a write whose connection broke is sent again.
const maxTries = 4

// ext is the extension the stream header carries: ASCII letters and digits,
// at most 10 bytes, else none.
func ext(name string) string {
	e := strings.TrimPrefix(filepath.Ext(name), ".")
	if len(e) > 10 {
		return ""
	}
	for _, c := range e {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return ""
		}
	}
	return e
}

func digest(c remote.Content) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(c, 0, c.Size)); err != nil {
		return "", fmt.Errorf("read the content to upload: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func row(name string, size int64, sum string) dmsxml.Row {
	return dmsxml.Row{Fields: []dmsxml.ValueField{
		{InternalName: "FileName", Text: name},
		{InternalName: "Size", Text: strconv.FormatInt(size, 10)},
		{InternalName: "SHA256", Text: sum},
	}}
}

func (r *Repo) title(name string) dmsxml.ValueField {
	return dmsxml.ValueField{InternalName: r.cfg.TitleField, Text: name}
}

func (r *Repo) table(rows []dmsxml.Row) []dmsxml.TableField {
	for i := range rows {
		rows[i].Line = i + 1
	}
	return []dmsxml.TableField{{InternalName: r.cfg.FilesTable, Rows: rows}}
}

// call runs a write job.
func (r *Repo) call(ctx context.Context, job, options string, data dmsxml.Data, files []rpc.File) (rpc.Reply, error) {
	x, err := b64XML(data)
	if err != nil {
		return rpc.Reply{}, err
	}
	params := []rpc.Param{rpc.Int("Flags", 0), rpc.Str("Options", options), x, rpc.Str("Encoding", "UTF-8")}
	if g := r.rpc.UserGUID(); g != "" {
		// Documented as required for the XML jobs; ECMind omits it
		// (spec §3.6, §9.5).
		params = append(params, rpc.Str("JobUserGUID", g))
	}
	// A failed XML job may answer with an XML error file as an output
	// stream, which says more than the error block.
	var errFile bytes.Buffer
	sink := func(i int, ext string, size int64) (io.Writer, error) {
		if i == 0 {
			errFile.Reset()
		}
		return &limitedWriter{w: &errFile, n: 64 << 10}, nil
	}
	rep, err := r.rpc.Call(ctx, rpc.Request{Job: job, Files: files, Params: params}, sink, false)
	if detail := dmsxml.Text(errFile.Bytes()); detail != "" {
		var f *rpc.Failure
		if errors.As(err, &f) {
			f.Reply.Errors = append(f.Reply.Errors, rpc.JobError{Message: detail, Source: "error file"})
		} else if err == nil {
			r.log.Warn("enaio: a write job answered with an error file", "job", job, "detail", detail)
		}
	}
	return rep, err
}

// limitedWriter keeps the first n bytes and drops the rest.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if keep := min(len(p), l.n); keep > 0 {
		_, _ = l.w.Write(p[:keep])
		l.n -= keep
	}
	return len(p), nil
}

// callWith runs a write job with streams made afresh by files (nil: none),
// closing them afterwards.
func (r *Repo) callWith(ctx context.Context, job, options string, data dmsxml.Data, files func() ([]rpc.File, func(), error)) (rpc.Reply, error) {
	if files == nil {
		return r.call(ctx, job, options, data, nil)
	}
	fs, closeAll, err := files()
	if err != nil {
		return rpc.Reply{}, err
	}
	defer closeAll()
	return r.call(ctx, job, options, data, fs)
}

// explain turns a failed write on o into the sentinel it stands for, by
// looking at the object again: enaio's error codes are not documented, the
// object's state is.
func (r *Repo) explain(ctx context.Context, o object, err error) error {
	var f *rpc.Failure
	if !errors.As(err, &f) {
		return unavailable(err)
	}
	n, serr := r.obj(ctx, o.id)
	switch {
	case errors.Is(serr, remote.ErrNotFound):
		return fmt.Errorf("%w: %s (%s)", remote.ErrNotFound, o.Name, f.Reply.Message())
	case serr == nil && n.Token != o.Token:
		return fmt.Errorf("%w: %s (%s)", remote.ErrConflict, o.Name, f.Reply.Message())
	}
	return fmt.Errorf("%s: %w", o.Name, err)
}

// change runs a write job on o with o's timestamp. files makes the streams
// afresh for each try. done tells from the object looked up again (or the
// error doing so) whether a job whose answer was lost took effect.
func (r *Repo) change(ctx context.Context, o object, job, options string, do dmsxml.DataObject,
	files func() ([]rpc.File, func(), error), done func(object, error) bool) (object, error) {
	do.ObjectID, do.Timestamp = o.id, o.Token
	data := dmsxml.NewData(o.cab.Internal, o.def.Internal, o.def.Kind(), do)
	for try := 1; ; try++ {
		_, err := r.callWith(ctx, job, options, data, files)
		if err == nil {
			return r.obj(ctx, o.id)
		}
		var lost *rpc.LostError
		if !errors.As(err, &lost) {
			return object{}, r.explain(ctx, o, err)
		}
		n, serr := r.obj(ctx, o.id)
		switch {
		case done(n, serr):
			r.log.Info("enaio: the connection broke after the job ran; it took effect", "job", job, "object", o.id)
			return n, nil
		case serr != nil:
			return object{}, serr
		case n.Token != o.Token:
			return object{}, fmt.Errorf("%w: %s changed while %s was under way", remote.ErrConflict, o.Name, job)
		case try == maxTries:
			return object{}, unavailable(err)
		}
		r.log.Info("enaio: the connection broke before the job ran; sending it again", "job", job, "object", o.id, "err", err)
	}
}

// check refuses a stale token before anything is sent.
func check(o object, token string) error {
	if token != "" && token != o.Token {
		return fmt.Errorf("%w: %s", remote.ErrConflict, o.Name)
	}
	return nil
}

// container returns the folder or register new objects go into.
func (r *Repo) container(ctx context.Context, parent remote.ID) (object, error) {
	kind, _, _, err := parseID(parent)
	if err != nil {
		return object{}, err
	}
	if kind != "object" {
		return object{}, fmt.Errorf("%w: documents and registers live in folders; make a folder in a cabinet first", remote.ErrPermission)
	}
	p, err := r.object(ctx, parent)
	if err != nil {
		return object{}, err
	}
	if p.Kind != remote.KindFolder {
		return object{}, fmt.Errorf("%w: %s is a document", remote.ErrNotFolder, p.Name)
	}
	return p, nil
}

// place says where in p a new object lies: its folder and register.
func place(p object) (folder, register int) {
	if p.def.Kind() == dmsxml.Folder {
		return p.id, 0
	}
	return p.folder, p.id
}

// insert runs dms.XMLInsert; when the answer is lost, found looks for the
// object the job may have made.
func (r *Repo) insert(ctx context.Context, cab dmsxml.Cabinet, def dmsxml.ObjectDef, do dmsxml.DataObject,
	files func() ([]rpc.File, func(), error), found func() (object, bool, error)) (remote.Node, error) {
	data := dmsxml.NewData(cab.Internal, def.Internal, def.Kind(), do)
	for try := 1; ; try++ {
		// A new file has no index data yet: its type's mandatory fields
		// are for people to fill in (ECMind's check_mandatory=False).
		rep, err := r.callWith(ctx, jobXMLInsert, "CHECKOBLIGATION=0", data, files)
		if err == nil {
			id := intParam(rep, "ObjectID")
			if id <= 0 {
				return remote.Node{}, fmt.Errorf("%w: dms.XMLInsert answered object id %d", remote.ErrProtocol, id)
			}
			r.learn(id, def.TypeID())
			o, err := r.obj(ctx, id)
			return o.Node, err
		}
		var lost *rpc.LostError
		if !errors.As(err, &lost) {
			var f *rpc.Failure
			if errors.As(err, &f) {
				return remote.Node{}, fmt.Errorf("enaio refused to create %q: %s: %w", titleOf(do, r.cfg.TitleField), f.Reply.Message(), remote.ErrRefused)
			}
			return remote.Node{}, unavailable(err)
		}
		o, ok, ferr := found()
		if ferr != nil {
			return remote.Node{}, ferr
		}
		if ok {
			r.log.Info("enaio: the connection broke after the insert ran; it took effect", "object", o.id)
			return o.Node, nil
		}
		if try == maxTries {
			return remote.Node{}, unavailable(err)
		}
		r.log.Info("enaio: the connection broke before the insert ran; sending it again", "err", err)
	}
}

func titleOf(do dmsxml.DataObject, field string) string {
	for _, f := range do.Fields {
		if f.InternalName == field {
			return f.Text
		}
	}
	return ""
}

// byTitle lists the objects of one type in p's place with a title.
func (r *Repo) byTitle(ctx context.Context, p object, cab dmsxml.Cabinet, def dmsxml.ObjectDef, title string) ([]object, error) {
	conds := []dmsxml.FieldCondition{{InternalName: r.cfg.TitleField, Operator: "=", Values: []string{title}}}
	if def.Kind() != dmsxml.Folder {
		folder, register := place(p)
		switch def.Kind() {
		case dmsxml.Register:
			if register != 0 {
				conds = append(conds, cond(dmsxml.RegParent, strconv.Itoa(register)))
			} else {
				conds = append(conds, cond(dmsxml.RegFolder, strconv.Itoa(folder)), cond(dmsxml.RegParent, ""))
			}
		default:
			if register != 0 {
				conds = append(conds, cond(dmsxml.DocRegister, strconv.Itoa(register)))
			} else {
				conds = append(conds, cond(dmsxml.DocFolder, strconv.Itoa(folder)), cond(dmsxml.DocRegister, ""))
			}
		}
	}
	return r.query(ctx, cab, def, conds...)
}

// Mkdir makes a folder object at a cabinet's top, a register elsewhere.
func (r *Repo) Mkdir(ctx context.Context, parent remote.ID, name string) (remote.Node, error) {
	if name == "" {
		return remote.Node{}, remote.ErrInvalidName
	}
	kind, cabName, _, err := parseID(parent)
	if err != nil {
		return remote.Node{}, err
	}
	var cab dmsxml.Cabinet
	var def dmsxml.ObjectDef
	do := dmsxml.DataObject{Fields: []dmsxml.ValueField{r.title(name)}}
	var p object
	switch kind {
	case "root":
		return remote.Node{}, fmt.Errorf("%w: cabinets are defined by an administrator (enaio editor)", remote.ErrPermission)
	case "cabinet":
		c, ok := r.cabinet(cabName)
		if !ok {
			return remote.Node{}, fmt.Errorf("%w: cabinet %q", remote.ErrNotFound, cabName)
		}
		fts := ofKind(c, dmsxml.Folder)
		if len(fts) == 0 {
			return remote.Node{}, fmt.Errorf("%w: cabinet %q has no folder type", remote.ErrUnsupported, c.Name)
		}
		cab, def = c, fts[0]
	default:
		if p, err = r.container(ctx, parent); err != nil {
			return remote.Node{}, err
		}
		rts := ofKind(p.cab, dmsxml.Register)
		if len(rts) == 0 {
			return remote.Node{}, fmt.Errorf("%w: cabinet %q has no register type", remote.ErrUnsupported, p.cab.Name)
		}
		cab, def = p.cab, rts[0]
		do.FolderID, do.RegisterID = place(p)
	}
	return r.insert(ctx, cab, def, do, nil, func() (object, bool, error) {
		os, err := r.byTitle(ctx, p, cab, def, name)
		if err != nil || len(os) == 0 {
			return object{}, false, err
		}
		return os[len(os)-1], true, nil
	})
}

// contentFile streams a Content.
func contentFile(name string, c remote.Content) rpc.File {
	return rpc.File{Ext: ext(name), Size: c.Size, R: io.NewSectionReader(c, 0, c.Size)}
}

// Insert makes a document of the cabinet's document type with one file.
func (r *Repo) Insert(ctx context.Context, parent remote.ID, name string, c remote.Content) (remote.Node, error) {
	if name == "" {
		return remote.Node{}, remote.ErrInvalidName
	}
	p, err := r.container(ctx, parent)
	if err != nil {
		return remote.Node{}, err
	}
	def, err := r.docType(p.cab)
	if err != nil {
		return remote.Node{}, err
	}
	sum, err := digest(c)
	if err != nil {
		return remote.Node{}, err
	}
	do := dmsxml.DataObject{Fields: []dmsxml.ValueField{r.title(name)}, Tables: r.table([]dmsxml.Row{row(name, c.Size, sum)})}
	do.FolderID, do.RegisterID = place(p)
	files := func() ([]rpc.File, func(), error) { return []rpc.File{contentFile(name, c)}, func() {}, nil }
	return r.insert(ctx, p.cab, def, do, files, func() (object, bool, error) {
		// The same name with the same bytes: taking it loses nothing even
		// if it was there before.
		os, err := r.byTitle(ctx, p, p.cab, def, name)
		if err != nil {
			return object{}, false, err
		}
		for i := len(os) - 1; i >= 0; i-- {
			if len(os[i].Files) == 1 && os[i].Files[0].SHA256 == sum && os[i].Files[0].Name == name {
				return os[i], true, nil
			}
		}
		return object{}, false, nil
	})
}

// rows returns a document's table rows; names of documents made without
// the table are the ones shown.
func rows(o object) []dmsxml.Row {
	var out []dmsxml.Row
	for i, f := range o.Files {
		r := row(f.Name, f.Size, f.SHA256)
		if i < len(o.mtimes) && o.mtimes[i] != "" {
			// The mtime goes with the content: kept on a rename.
			r.Fields = append(r.Fields, dmsxml.ValueField{InternalName: mtimeColumn, Text: o.mtimes[i]})
		}
		out = append(out, r)
	}
	return out
}

// rewrite replaces all of a document's files: file i gets c (nil: removed).
func (r *Repo) rewrite(ctx context.Context, o object, i int, c *remote.Content) (object, error) {
	_, have, err := r.current(ctx, o)
	if err != nil {
		return object{}, err
	}
	var sum string
	if c != nil {
		if sum, err = digest(*c); err != nil {
			return object{}, err
		}
	}
	var rs []dmsxml.Row
	kept := rows(o)
	for j, f := range o.Files {
		switch {
		case j != i:
			rs = append(rs, kept[j])
		case c != nil:
			rs = append(rs, row(f.Name, c.Size, sum))
		}
	}
	var do dmsxml.DataObject
	options := "REPLACEFILES=1"
	if r.hasTable(o.def) {
		do.Tables = r.table(rs)
		options += ";REPLACETABLEFIELDS=1"
	}
	files := func() ([]rpc.File, func(), error) {
		var fs []rpc.File
		var opened []*os.File
		closeAll := func() {
			for _, f := range opened {
				f.Close()
			}
		}
		for j, f := range o.Files {
			switch {
			case j == i && c != nil:
				fs = append(fs, contentFile(f.Name, *c))
			case j != i:
				h, err := os.Open(have[j].path)
				if err != nil {
					closeAll()
					return nil, nil, fmt.Errorf("cache: %w", err)
				}
				opened = append(opened, h)
				fs = append(fs, rpc.File{Ext: have[j].ext, Size: have[j].size, R: h})
			}
		}
		return fs, closeAll, nil
	}
	return r.change(ctx, o, jobXMLUpdate, options, do, files, func(n object, err error) bool {
		return err == nil && n.Token != o.Token && len(n.Files) == len(rs) && (c == nil || !o.table || n.Files[i].SHA256 == sum)
	})
}

// fileAt returns a document, checked against token, and the position of
// one of its files.
func (r *Repo) fileAt(ctx context.Context, doc remote.ID, token, file string) (object, int, error) {
	o, err := r.object(ctx, doc)
	if err != nil {
		return object{}, 0, err
	}
	if err := check(o, token); err != nil {
		return object{}, 0, err
	}
	i, err := index(o, file)
	return o, i, err
}

// Replace sets one file's content.
func (r *Repo) Replace(ctx context.Context, doc remote.ID, token, file string, c remote.Content) (remote.Node, error) {
	o, i, err := r.fileAt(ctx, doc, token, file)
	if err != nil {
		return remote.Node{}, err
	}
	n, err := r.rewrite(ctx, o, i, &c)
	return n.Node, err
}

// Append adds a file (dms.XMLUpdate without REPLACEFILES appends).
func (r *Repo) Append(ctx context.Context, doc remote.ID, token, file string, c remote.Content) (remote.Node, error) {
	if file == "" {
		return remote.Node{}, remote.ErrInvalidName
	}
	o, err := r.object(ctx, doc)
	if err != nil {
		return remote.Node{}, err
	}
	if o.Kind != remote.KindDocument {
		return remote.Node{}, fmt.Errorf("%w: %s", remote.ErrIsFolder, o.Name)
	}
	if err := check(o, token); err != nil {
		return remote.Node{}, err
	}
	if _, ok := o.File(file); ok {
		return remote.Node{}, fmt.Errorf("%w: %s already has %q", remote.ErrExist, o.Name, file)
	}
	if !r.hasTable(o.def) {
		return remote.Node{}, fmt.Errorf("%w: documents of type %q cannot keep file names (no %q table)", remote.ErrUnsupported, o.def.Name, r.cfg.FilesTable)
	}
	sum, err := digest(c)
	if err != nil {
		return remote.Node{}, err
	}
	rs := append(rows(o), row(file, c.Size, sum))
	do := dmsxml.DataObject{Tables: r.table(rs)}
	files := func() ([]rpc.File, func(), error) { return []rpc.File{contentFile(file, c)}, func() {}, nil }
	n, err := r.change(ctx, o, jobXMLUpdate, "REPLACETABLEFIELDS=1", do, files, func(n object, err error) bool {
		f, ok := n.File(file)
		return err == nil && ok && f.SHA256 == sum
	})
	return n.Node, err
}

// DeleteFile removes one file of a document that has several.
func (r *Repo) DeleteFile(ctx context.Context, doc remote.ID, token, file string) (remote.Node, error) {
	o, i, err := r.fileAt(ctx, doc, token, file)
	if err != nil {
		return remote.Node{}, err
	}
	if len(o.Files) == 1 {
		return remote.Node{}, fmt.Errorf("%w: %s: a document keeps at least one file", remote.ErrUnsupported, o.Name)
	}
	n, err := r.rewrite(ctx, o, i, nil)
	return n.Node, err
}

// Rename moves with dms.XMLMove and renames by updating the title (and,
// for a document with one file, that file's name).
func (r *Repo) Rename(ctx context.Context, id remote.ID, token string, newParent remote.ID, newName string) (remote.Node, error) {
	if newName == "" {
		return remote.Node{}, remote.ErrInvalidName
	}
	if kind, _, _, err := parseID(id); err != nil {
		return remote.Node{}, err
	} else if kind != "object" {
		return remote.Node{}, fmt.Errorf("%w: cabinets are renamed by an administrator", remote.ErrPermission)
	}
	o, err := r.object(ctx, id)
	if err != nil {
		return remote.Node{}, err
	}
	if err := check(o, token); err != nil {
		return remote.Node{}, err
	}
	if newParent != o.Parent {
		// Folder objects stay in their cabinet's top; everything stays in
		// its cabinet. EXDEV makes mv copy and delete instead.
		if o.def.Kind() == dmsxml.Folder {
			return remote.Node{}, fmt.Errorf("enaio folders cannot be moved: %w", syscall.EXDEV)
		}
		kind, _, _, err := parseID(newParent)
		if err != nil {
			return remote.Node{}, err
		}
		if kind != "object" {
			return remote.Node{}, fmt.Errorf("%s must lie in a folder: %w", o.Name, syscall.EXDEV)
		}
		p, err := r.container(ctx, newParent)
		if err != nil {
			return remote.Node{}, err
		}
		if p.cab.Internal != o.cab.Internal {
			return remote.Node{}, fmt.Errorf("enaio moves nothing between cabinets: %w", syscall.EXDEV)
		}
		var do dmsxml.DataObject
		do.FolderID, do.RegisterID = place(p)
		if o, err = r.change(ctx, o, jobXMLMove, "", do, nil, func(n object, err error) bool {
			return err == nil && n.Parent == newParent
		}); err != nil {
			return remote.Node{}, err
		}
	}
	if newName != o.Name {
		do := dmsxml.DataObject{Fields: []dmsxml.ValueField{r.title(newName)}}
		options := ""
		if o.Kind == remote.KindDocument && len(o.Files) == 1 && r.hasTable(o.def) {
			rs := rows(o)
			rs[0].Fields[0].Text = newName
			do.Tables, options = r.table(rs), "REPLACETABLEFIELDS=1"
		}
		if o, err = r.change(ctx, o, jobXMLUpdate, options, do, nil, func(n object, err error) bool {
			return err == nil && n.Name == newName
		}); err != nil {
			return remote.Node{}, err
		}
	}
	return o.Node, nil
}

// Delete moves a document or an empty folder or register to enaio's
// recycle bin (never a hard delete).
func (r *Repo) Delete(ctx context.Context, id remote.ID, token string) error {
	if kind, _, _, err := parseID(id); err != nil {
		return err
	} else if kind != "object" {
		return fmt.Errorf("%w: cabinets are removed by an administrator", remote.ErrPermission)
	}
	o, err := r.object(ctx, id)
	if err != nil {
		return err
	}
	if err := check(o, token); err != nil {
		return err
	}
	if o.Kind == remote.KindFolder {
		kids, err := r.List(ctx, id)
		if err != nil {
			return err
		}
		if len(kids) > 0 {
			return fmt.Errorf("%w: %s", remote.ErrNotEmpty, o.Name)
		}
	}
	_, err = r.change(ctx, o, jobXMLDelete, "", dmsxml.DataObject{}, nil, func(_ object, err error) bool {
		return errors.Is(err, remote.ErrNotFound)
	})
	if errors.Is(err, remote.ErrNotFound) {
		return nil // gone, which is what was asked for (change looked it up)
	}
	return err
}
