package core

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/dmsfs/dmsfs/remote"
)

// The POSIX mtime a program set (utimes: rsync -a, cp -p, tar) is kept in
// the spool for this mount, and, where the repository lists fields along
// with its nodes (Capabilities.ListsFields), also in the field dmsfs.mtime
// with the content it belongs to, so that another machine's mount (or
// this one with a new cache directory) shows it and rsync -a finds nothing
// to send. A content changed since (by anyone) makes the field stale; it
// is then ignored.

const mtimeField = remote.MtimeField

// keptMtime encodes a file's mtime with its content ID.
func keptMtime(t time.Time, contentID string) string {
	return t.UTC().Format(time.RFC3339Nano) + " " + contentID
}

// parseKeptMtime reads dmsfs.mtime for content contentID.
func parseKeptMtime(v, contentID string) (time.Time, bool) {
	ts, id, ok := strings.Cut(v, " ")
	if !ok || id != contentID || contentID == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	return t, err == nil
}

// keepsMtime tells whether the repository can keep mtimes.
func (fsys *FS) keepsMtime() (remote.Fields, bool) {
	fr, ok := remote.As[remote.Fields](fsys.repo)
	return fr, ok && fsys.caps.ListsFields
}

// takeKeptMtime shows the mtime the repository keeps for the file's
// content, unless one is set locally (mu held).
func (f *File) takeKeptMtime(fields map[string]string) {
	if f.attr.mtimeSet || fields == nil {
		return
	}
	if t, ok := parseKeptMtime(fields[mtimeField], f.rf.ContentID); ok {
		f.attr.mtime = t
	}
}

// sendMtime stores an mtime set by a program in the repository: now when
// the file's content is there, else after its upload (mu held; released
// for the call). Where a change of a published record's file makes a new
// version (Invenio, remote.Drafts), the mtime goes only into a draft open
// anyway: a touch of a published file must not open a new version.
func (f *File) sendMtime(ctx context.Context) {
	fr, ok := f.fsys.keepsMtime()
	if !ok || !f.attr.mtimeSet || f.multi {
		return
	}
	if !f.onServer() || f.dirty || f.busy {
		f.mtimePending = true
		return
	}
	f.mtimePending = false
	v := keptMtime(f.attr.mtime, f.rf.ContentID)
	if f.fields != nil && f.fields[mtimeField] == v {
		return
	}
	id, token := f.doc.id, f.doc.getToken()
	f.acquire()
	f.mu.Unlock()
	var n remote.Node
	editable, err := true, error(nil)
	if d, ok := remote.As[remote.Drafts](f.fsys.repo); ok {
		editable, err = d.Editable(ctx, id)
	}
	if err == nil && editable {
		n, err = fr.SetField(ctx, id, token, mtimeField, &v)
	}
	f.mu.Lock()
	f.done()
	if err == nil && !editable {
		return // kept in the spool only
	}
	if errors.Is(err, remote.ErrUnsupported) {
		// This document cannot keep one (an enaio type without the
		// column); the mtime stays in the spool.
		f.fsys.log.Debug("the repository keeps no mtime for this file", "path", f.path(), "err", err)
		return
	}
	if err != nil {
		// The mtime stays in the spool for this mount; only another
		// mount will not see it.
		f.fsys.log.Warn("the mtime could not be kept in the repository", "path", f.path(), "err", err)
		return
	}
	f.fieldSet(token, n.Token, mtimeField, &v)
}
