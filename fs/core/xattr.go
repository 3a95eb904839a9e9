package core

import (
	"context"
	"errors"
	"os"
	"sort"
	"strings"
	"syscall"

	"github.com/dmsfs/dmsfs/remote"
)

// Extended attributes (DESIGN.md, "Extended attributes"). Read-only names
// describe the object; user.dms.field.<name> are the repository's fields
// (remote.Fields), read from the server once per DirCacheTime and written
// one field at a time with the object's token. Writes of read-only names
// change nothing and fail nothing (see readOnly).
const (
	xattrNS    = "user.dms."
	xattrField = "user.dms.field."
	xattrID    = "user.dms.id"
	xattrVer   = "user.dms.version"
	xattrSum   = "user.dms.checksum"
	xattrState = "user.dms.state"
	xattrURL   = "user.dms.url"
	xattrType  = "user.dms.type"
	xattrError = "user.dms.error" // .search: why the last query failed
)

// XattrNames sorts a set of attributes' names, as listxattr gives them.
func XattrNames(attrs map[string]string) []string {
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// checksum is the repository's checksum of a file, "" if it has none.
func checksum(rf remote.File) string {
	switch {
	case rf.SHA256 != "":
		return "sha256:" + rf.SHA256
	case strings.HasPrefix(rf.ContentID, "md5:"):
		return rf.ContentID // Invenio's checksums are its content IDs
	}
	return ""
}

// readOnlyNames are the names that describe the object.
var readOnlyNames = map[string]bool{xattrID: true, xattrVer: true, xattrSum: true, xattrState: true, xattrURL: true, xattrType: true, xattrError: true}

// readOnly answers a write or removal of a name that is no field. The
// read-only names take it and stay as they are: a copy between mounts
// (rsync -X, cp --preserve=xattr, tar --xattrs) writes the source's id
// and version onto another object, and a refusal would fail the whole
// copy. Other names are not kept (ENOTSUP).
func readOnly(name string) error {
	if readOnlyNames[name] {
		return nil
	}
	return syscall.ENOTSUP
}

// Xattrs are the file's extended attributes: name → value; the fields
// only with withFields (they may cost a request).
func (f *File) Xattrs(ctx context.Context, withFields bool) (map[string]string, error) {
	var fields map[string]string
	if withFields {
		var err error
		if fields, err = f.currentFields(ctx); err != nil {
			return nil, f.fsys.fail("getxattr", f.Path(), err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]string{xattrState: f.state()}
	if f.onServer() {
		out[xattrID] = string(f.doc.id)
		out[xattrVer] = f.doc.getToken()
		if sum := checksum(f.rf); sum != "" && !f.dirty {
			out[xattrSum] = sum
		}
		describe(out, f.url, f.typ)
	}
	for k, v := range fields {
		out[xattrField+k] = v
	}
	return out, nil
}

// state is user.dms.state: has the content reached the server (mu held)?
func (f *File) state() string {
	queued, refused, reason := f.fsys.queue.State(f)
	switch {
	case f.temp:
		return "local"
	case refused:
		return "failed: " + reason
	case queued || f.dirty:
		return "pending"
	case f.fsys.pinned(f.path()):
		if _, err := os.Stat(f.fsys.pinPath(f.rf.ContentID)); err == nil {
			return "pinned" // saved, and kept on disk for offline use
		}
	}
	return "saved"
}

// currentFields are the file's fields: the repository's, or for a file
// not on the server yet those set on it.
func (f *File) currentFields(ctx context.Context) (map[string]string, error) {
	fr, ok := remote.As[remote.Fields](f.fsys.repo)
	f.mu.Lock()
	if !ok || !f.onServer() {
		out := map[string]string{}
		for k, v := range f.pendingFields {
			if v != nil {
				out[k] = *v
			}
		}
		f.mu.Unlock()
		return out, nil
	}
	id, token := f.doc.id, f.doc.getToken()
	if f.fields != nil && f.fieldsToken == token && f.fsys.now().Sub(f.fieldsAt) < f.fsys.opts.DirCacheTime {
		out := f.fields
		f.mu.Unlock()
		return out, nil
	}
	f.mu.Unlock()
	fields, err := fr.Fields(ctx, id)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.fields, f.fieldsToken, f.fieldsAt = fields, token, f.fsys.now()
	f.mu.Unlock()
	return fields, nil
}

// SetXattr sets an extended attribute: a field is sent to the repository
// (kept until the upload for a file not on the server yet).
func (f *File) SetXattr(ctx context.Context, name string, value []byte) error {
	return f.changeXattr(ctx, name, value, false)
}

// RemoveXattr clears a field.
func (f *File) RemoveXattr(ctx context.Context, name string) error {
	return f.changeXattr(ctx, name, nil, true)
}

func (f *File) changeXattr(ctx context.Context, name string, value []byte, remove bool) error {
	if f.fsys.opts.ReadOnly {
		return syscall.EROFS
	}
	field, isField := strings.CutPrefix(name, xattrField)
	if !isField || field == "" {
		return readOnly(name)
	}
	fr, ok := remote.As[remote.Fields](f.fsys.repo)
	if !ok {
		return syscall.ENOTSUP
	}
	var v *string
	if !remove {
		s := string(value)
		v = &s
	}
	f.mu.Lock()
	if !f.onServer() {
		if f.pendingFields == nil {
			f.pendingFields = map[string]*string{}
		}
		f.pendingFields[field] = v
		f.mu.Unlock()
		return nil
	}
	f.mu.Unlock()
	cur, err := f.currentFields(ctx)
	if err != nil {
		return f.fsys.fail("setxattr", f.Path(), err)
	}
	if old, had := cur[field]; (remove && !had) || (!remove && had && old == *v) {
		return nil // unchanged: nothing to send
	}
	f.mu.Lock()
	id, token := f.doc.id, f.doc.getToken()
	f.mu.Unlock()
	n, err := setField(ctx, f.fsys.repo, fr, id, token, field, v, cur)
	if err != nil {
		return f.fsys.fail("setxattr", f.Path(), err)
	}
	f.mu.Lock()
	f.fieldSet(token, n.Token, field, v)
	f.mu.Unlock()
	return nil
}

// fieldSet takes a field change this mount made (mu held): the token moved
// on, the content did not.
func (f *File) fieldSet(oldToken, newToken, field string, v *string) {
	if f.doc != nil {
		f.doc.setToken(newToken)
	}
	if f.baseToken == oldToken {
		f.baseToken = newToken
	}
	fields := make(map[string]string, len(f.fields)+1)
	for k, x := range f.fields {
		fields[k] = x
	}
	if v == nil {
		delete(fields, field)
	} else {
		fields[field] = *v
	}
	f.fields, f.fieldsToken, f.fieldsAt = fields, newToken, f.fsys.now()
}

// sendPendingFields sends the fields set before the file was on the
// server (mu held, no operation under way; released meanwhile).
func (f *File) sendPendingFields(ctx context.Context) {
	fr, ok := remote.As[remote.Fields](f.fsys.repo)
	pending := f.pendingFields
	f.pendingFields = nil
	if !ok {
		return
	}
	names := make([]string, 0, len(pending))
	for k := range pending {
		names = append(names, k)
	}
	sort.Strings(names)
	f.acquire()
	defer f.done()
	for _, name := range names {
		id, token := f.doc.id, f.doc.getToken()
		f.mu.Unlock()
		n, err := fr.SetField(ctx, id, token, name, pending[name])
		f.mu.Lock()
		if err != nil {
			f.fsys.fail("setxattr", f.path(), err)
			continue
		}
		f.fieldSet(token, n.Token, name, pending[name])
	}
}

// setField sends one field. A stale token is looked at again: when the
// field still holds what this mount showed (based), only the token was
// stale (someone changed something else) and it is sent again; otherwise
// another client changed this field, and it is not overwritten.
func setField(ctx context.Context, repo remote.Repository, fr remote.Fields, id remote.ID, token, name string, v *string, based map[string]string) (remote.Node, error) {
	n, err := fr.SetField(ctx, id, token, name, v)
	if !errors.Is(err, remote.ErrConflict) {
		return n, err
	}
	now, serr := fr.Fields(ctx, id)
	cur, nerr := repo.Stat(ctx, id)
	if serr != nil || nerr != nil || now[name] != based[name] {
		return n, err
	}
	return fr.SetField(ctx, id, cur.Token, name, v)
}

// Xattrs are the directory's extended attributes (folders and documents
// with several files); the fields only with withFields.
func (d *Dir) Xattrs(ctx context.Context, withFields bool) (map[string]string, error) {
	out := map[string]string{xattrState: "saved"}
	d.amu.Lock()
	id, token := d.node.ID, d.node.Token
	describe(out, d.node.URL, d.node.Type)
	d.amu.Unlock()
	if d.doc != nil {
		token = d.doc.getToken()
	}
	out[xattrID], out[xattrVer] = string(id), token
	if d.search != nil && d.search.root {
		d.mu.Lock()
		if msg := d.search.lastErr; msg != "" {
			out[xattrError] = msg // why the last query failed
		}
		d.mu.Unlock()
	}
	if fr, ok := remote.As[remote.Fields](d.fsys.repo); ok && withFields && id != "" {
		fields, err := d.currentFields(ctx, fr, id, token)
		if err != nil {
			return nil, d.fsys.fail("getxattr", d.Path(), err)
		}
		for k, v := range fields {
			out[xattrField+k] = v
		}
	}
	return out, nil
}

// currentFields are the directory's fields: read once per DirCacheTime
// and token, as for files (getfattr -d of a tree asks once per directory).
func (d *Dir) currentFields(ctx context.Context, fr remote.Fields, id remote.ID, token string) (map[string]string, error) {
	d.amu.Lock()
	if d.fields != nil && d.fieldsToken == token && d.fsys.now().Sub(d.fieldsAt) < d.fsys.opts.DirCacheTime {
		out := d.fields
		d.amu.Unlock()
		return out, nil
	}
	d.amu.Unlock()
	fields, err := fr.Fields(ctx, id)
	if err != nil {
		return nil, err
	}
	d.amu.Lock()
	d.fields, d.fieldsToken, d.fieldsAt = fields, token, d.fsys.now()
	d.amu.Unlock()
	return fields, nil
}

// SetXattr sets a field of the folder or document.
func (d *Dir) SetXattr(ctx context.Context, name string, value []byte) error {
	return d.changeXattr(ctx, name, value, false)
}

// RemoveXattr clears a field of the folder or document.
func (d *Dir) RemoveXattr(ctx context.Context, name string) error {
	return d.changeXattr(ctx, name, nil, true)
}

func (d *Dir) changeXattr(ctx context.Context, name string, value []byte, remove bool) error {
	if d.fsys.opts.ReadOnly {
		return syscall.EROFS
	}
	field, isField := strings.CutPrefix(name, xattrField)
	if !isField || field == "" {
		return readOnly(name)
	}
	attrs, err := d.Xattrs(ctx, true)
	if err != nil {
		return err
	}
	fr, ok := remote.As[remote.Fields](d.fsys.repo)
	if !ok || attrs[xattrID] == "" {
		return syscall.ENOTSUP
	}
	old, had := attrs[name]
	if (remove && !had) || (!remove && had && old == string(value)) {
		return nil
	}
	var v *string
	if !remove {
		s := string(value)
		v = &s
	}
	based := map[string]string{}
	if had {
		based[field] = old
	}
	n, err := setField(ctx, d.fsys.repo, fr, remote.ID(attrs[xattrID]), attrs[xattrVer], field, v, based)
	if err != nil {
		return d.fsys.fail("setxattr", d.Path(), err)
	}
	d.amu.Lock()
	d.node.Token = n.Token
	d.fields = nil // read again: the repository may have changed more (Invenio's new-version draft)
	d.amu.Unlock()
	if d.doc != nil {
		d.doc.setToken(n.Token)
	}
	return nil
}

// IsField tells whether an attribute name is a repository field's.
func IsField(name string) bool { return strings.HasPrefix(name, xattrField) }

// Ours tells whether dmsfs answers for an attribute name at all; others
// are ENODATA without asking anything (the kernel asks for
// security.capability before writes).
func Ours(name string) bool { return strings.HasPrefix(name, xattrNS) }

// describe adds the web UI's address and the type where known.
func describe(out map[string]string, url, typ string) {
	if url != "" {
		out[xattrURL] = url
	}
	if typ != "" {
		out[xattrType] = typ
	}
}
