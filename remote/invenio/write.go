package invenio

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dmsfs/dmsfs/internal/backoff"
	"github.com/dmsfs/dmsfs/remote"
)

// Insert puts a new file into a record (or a folder in one). Files cannot
// live at the root, which lists records.
func (r *Repo) Insert(ctx context.Context, parent remote.ID, name string, c remote.Content) (remote.Node, error) {
	if err := checkName(name); err != nil {
		return remote.Node{}, err
	}
	if parent == rootID {
		return remote.Node{}, fmt.Errorf("%s: files go into a record; make one with mkdir first: %w", name, remote.ErrPermission)
	}
	f, err := r.folder(parent)
	if err != nil {
		return remote.Node{}, err
	}
	unlock := r.lock(f.parent)
	defer unlock()
	draft, err := r.writable(ctx, f.parent)
	if err != nil {
		return remote.Node{}, err
	}
	// No listing here (it would make copying n files O(n²)): the server
	// refuses a duplicate key, and folders made here are known.
	key := joinKey(f.key, name)
	r.mu.Lock()
	clash := r.vdirs[f.parent][key]
	r.mu.Unlock()
	if clash {
		return remote.Node{}, fmt.Errorf("%s: %w", name, remote.ErrExist)
	}
	e, err := r.upload(ctx, draft, key, c, nil)
	if err != nil {
		return remote.Node{}, err
	}
	id := r.stableID(ref{kind: 'f', parent: f.parent, key: key}.id())
	return r.fileNode(id, parent, e), nil
}

// target resolves a file ID for a change: the record's lock is taken (and
// returned), the draft made writable, and the token checked against the
// file's checksum, Invenio having no concurrency control for files.
func (r *Repo) target(ctx context.Context, doc remote.ID, token, file string) (ref, *record, fileEntry, func(), error) {
	f, ok := r.resolve(doc)
	if !ok || f.kind != 'f' {
		return ref{}, nil, fileEntry{}, nil, fmt.Errorf("%s: %w", doc, remote.ErrNotFound)
	}
	unlock := r.lock(f.parent)
	fail := func(err error) (ref, *record, fileEntry, func(), error) {
		unlock()
		return ref{}, nil, fileEntry{}, nil, err
	}
	_, files, err := r.workingFiles(ctx, f.parent)
	if err != nil {
		return fail(err)
	}
	cur, ok := files[f.key]
	if !ok || (file != "" && lastName(f.key) != file) {
		return fail(fmt.Errorf("%s: %w", file, remote.ErrNotFound))
	}
	if token != "" && r.checksum(cur.Checksum) != token {
		return fail(fmt.Errorf("%s: %w", lastName(f.key), remote.ErrConflict))
	}
	draft, err := r.writable(ctx, f.parent)
	if err != nil {
		return fail(err)
	}
	if files, err = r.files(ctx, draft); err != nil {
		return fail(err)
	}
	if cur, ok = files[f.key]; !ok {
		return fail(fmt.Errorf("%s: %w", file, remote.ErrNotFound))
	}
	// The token was checked against the files this client knew, which
	// for a published record are the published ones; the draft written
	// may be another client's new version with its own change of the
	// file (issue 13, item 3): check it against what is written.
	if token != "" && r.checksum(cur.Checksum) != token {
		return fail(fmt.Errorf("%s: changed in the record's draft: %w", lastName(f.key), remote.ErrConflict))
	}
	return f, draft, cur, unlock, nil
}

// Replace uploads new content for a file. Invenio cannot overwrite a
// committed file: the draft's entry is deleted and uploaded again, so for a
// moment the draft (never the published version) lacks the file.
func (r *Repo) Replace(ctx context.Context, doc remote.ID, token, file string, c remote.Content) (remote.Node, error) {
	f, draft, cur, unlock, err := r.target(ctx, doc, token, file)
	if err != nil {
		return remote.Node{}, err
	}
	defer unlock()
	if err := r.deleteEntry(ctx, cur); err != nil {
		return remote.Node{}, err
	}
	// The metadata is the entry's: the new one takes it over.
	e, err := r.upload(ctx, draft, f.key, c, cur.Metadata)
	if err != nil {
		return remote.Node{}, err
	}
	return r.fileNode(doc, r.parentOf(f), e), nil
}

// Append and DeleteFile: a file is a document of its own here; records,
// which hold several files, are folders.
func (r *Repo) Append(ctx context.Context, doc remote.ID, token, file string, c remote.Content) (remote.Node, error) {
	return remote.Node{}, fmt.Errorf("invenio: documents have one file: %w", remote.ErrUnsupported)
}

func (r *Repo) DeleteFile(ctx context.Context, doc remote.ID, token, file string) (remote.Node, error) {
	return remote.Node{}, fmt.Errorf("invenio: documents have one file: %w", remote.ErrUnsupported)
}

func (r *Repo) deleteEntry(ctx context.Context, e fileEntry) error {
	_, err := r.call(ctx, http.MethodDelete, e.Links.Self, nil, nil, nil, http.StatusNoContent, http.StatusOK)
	if err != nil && !errors.Is(err, remote.ErrNotFound) {
		return fmt.Errorf("delete %s: %w", e.Key, err)
	}
	r.noteFile(nil, e.Key, nil)
	return nil
}

// Delete removes a file from the draft, an empty folder, or an unpublished
// draft record that holds no files. Published records are never deleted.
func (r *Repo) Delete(ctx context.Context, id remote.ID, token string) error {
	f, ok := r.resolve(id)
	if !ok {
		return fmt.Errorf("%s: %w", id, remote.ErrNotFound)
	}
	switch f.kind {
	case 'f':
		_, _, cur, unlock, err := r.target(ctx, id, token, "")
		if err != nil {
			return err
		}
		defer unlock()
		return r.deleteEntry(ctx, cur)
	case 'd':
		unlock := r.lock(f.parent)
		defer unlock()
		_, files, err := r.workingFiles(ctx, f.parent)
		if err != nil {
			return err
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		made := r.vdirs[f.parent]
		for k := range files {
			if strings.HasPrefix(k, f.key+"/") && splittable(k) {
				return fmt.Errorf("%s: %w", f.key, remote.ErrNotEmpty)
			}
		}
		for k := range made {
			if strings.HasPrefix(k, f.key+"/") {
				return fmt.Errorf("%s: %w", f.key, remote.ErrNotEmpty)
			}
		}
		if !made[f.key] {
			return fmt.Errorf("%s: %w", f.key, remote.ErrNotFound)
		}
		delete(made, f.key)
		return nil
	}
	unlock := r.lock(f.parent)
	defer unlock()
	rec, files, err := r.workingFiles(ctx, f.parent)
	if err != nil {
		return err
	}
	if !rec.editable() || rec.Versions.Index > 1 {
		return fmt.Errorf("record %q has been published; published records cannot be deleted: %w", titleName(rec), remote.ErrPermission)
	}
	r.mu.Lock()
	empty := len(files) == 0 && len(r.vdirs[f.parent]) == 0
	r.mu.Unlock()
	if !empty {
		return fmt.Errorf("record %q: %w", titleName(rec), remote.ErrNotEmpty)
	}
	hdr := http.Header{}
	if token != "" {
		if token != strconv.Itoa(rec.RevisionID) {
			return fmt.Errorf("record %q: %w", titleName(rec), remote.ErrConflict)
		}
		hdr.Set("If-Match", token) // a bare integer: Invenio does not parse a quoted ETag here
	}
	_, err = r.call(ctx, http.MethodDelete, rec.Links.Self, nil, hdr, nil, http.StatusNoContent)
	if preconditionFailed(err) {
		// The revision moved since it was read (a file deleted moves it
		// too): read the draft again; discard it only if it is still
		// empty, at its new revision.
		fresh, ferr := r.working(ctx, f.parent, false)
		if ferr != nil {
			return ferr
		}
		if files, ferr := r.files(ctx, fresh); ferr != nil || len(files) > 0 {
			return fmt.Errorf("record %q changed while it was discarded: %w", titleName(rec), remote.ErrConflict)
		}
		hdr.Set("If-Match", strconv.Itoa(fresh.RevisionID))
		_, err = r.call(ctx, http.MethodDelete, fresh.Links.Self, nil, hdr, nil, http.StatusNoContent)
	}
	if err != nil {
		return fmt.Errorf("discard draft %s: %w", rec.ID, err)
	}
	r.mu.Lock()
	delete(r.recs, f.parent)
	delete(r.vdirs, f.parent)
	delete(r.made, f.parent)
	r.mu.Unlock()
	return nil
}

// Rename renames a record (its draft's title), or renames or moves a file
// or folder. Invenio has no rename: a file is uploaded under its new key and
// the old key deleted; a folder moves file by file.
func (r *Repo) Rename(ctx context.Context, id remote.ID, token string, newParent remote.ID, newName string) (remote.Node, error) {
	if err := checkName(newName); err != nil {
		return remote.Node{}, err
	}
	f, ok := r.resolve(id)
	if !ok {
		return remote.Node{}, fmt.Errorf("%s: %w", id, remote.ErrNotFound)
	}
	if f.kind == 'r' {
		if newParent != rootID {
			return remote.Node{}, fmt.Errorf("records stay at the top: %w", remote.ErrUnsupported)
		}
		return r.retitle(ctx, id, f, token, newName)
	}
	if newParent == rootID {
		return remote.Node{}, fmt.Errorf("%s: files go into a record: %w", newName, remote.ErrPermission)
	}
	to, err := r.folder(newParent)
	if err != nil {
		return remote.Node{}, err
	}
	newKey := joinKey(to.key, newName)
	if f.kind == 'd' && to.parent == f.parent && (newKey == f.key || strings.HasPrefix(newKey, f.key+"/")) {
		return remote.Node{}, fmt.Errorf("cannot move %s into itself: %w", f.key, remote.ErrInvalidName)
	}
	// Lock both records, in a fixed order.
	parents := []string{f.parent, to.parent}
	sort.Strings(parents)
	defer r.lock(parents[0])()
	if parents[1] != parents[0] {
		defer r.lock(parents[1])()
	}
	src, err := r.writable(ctx, f.parent)
	if err != nil {
		return remote.Node{}, err
	}
	dst := src
	if to.parent != f.parent {
		if dst, err = r.writable(ctx, to.parent); err != nil {
			return remote.Node{}, err
		}
	}
	srcFiles, err := r.files(ctx, src)
	if err != nil {
		return remote.Node{}, err
	}
	dstFiles := srcFiles
	if dst != src {
		if dstFiles, err = r.files(ctx, dst); err != nil {
			return remote.Node{}, err
		}
	}
	if to.kind == 'd' && !r.dirExists(to, dstFiles) {
		return remote.Node{}, fmt.Errorf("%s: %w", to.key, remote.ErrNotFound)
	}
	if _, dup := dstFiles[newKey]; dup || r.dirExists(ref{kind: 'd', parent: to.parent, key: newKey}, dstFiles) {
		return remote.Node{}, fmt.Errorf("%s: %w", newName, remote.ErrExist)
	}
	if f.kind == 'f' {
		cur, ok := srcFiles[f.key]
		if !ok {
			return remote.Node{}, fmt.Errorf("%s: %w", f.key, remote.ErrNotFound)
		}
		if token != "" && r.checksum(cur.Checksum) != token {
			return remote.Node{}, fmt.Errorf("%s: %w", lastName(f.key), remote.ErrConflict)
		}
		e, err := r.moveFile(ctx, cur, dst, newKey)
		if err != nil {
			return remote.Node{}, err
		}
		r.moved(id, ref{kind: 'f', parent: to.parent, key: newKey}.id())
		return r.fileNode(id, newParent, e), nil
	}
	// A folder: every file below it, then the empty folders made here.
	if !r.dirExists(f, srcFiles) {
		return remote.Node{}, fmt.Errorf("%s: %w", f.key, remote.ErrNotFound)
	}
	for k, e := range srcFiles {
		rest, ok := strings.CutPrefix(k, f.key+"/")
		if !ok || !splittable(k) {
			continue
		}
		oldID := ref{kind: 'f', parent: f.parent, key: k}.id()
		stable := r.stableID(oldID)
		if _, err := r.moveFile(ctx, e, dst, newKey+"/"+rest); err != nil {
			return remote.Node{}, err
		}
		r.moved(stable, ref{kind: 'f', parent: to.parent, key: newKey + "/" + rest}.id())
	}
	r.mu.Lock()
	for k := range r.vdirs[f.parent] {
		if k == f.key || strings.HasPrefix(k, f.key+"/") {
			delete(r.vdirs[f.parent], k)
			if r.vdirs[to.parent] == nil {
				r.vdirs[to.parent] = map[string]bool{}
			}
			r.vdirs[to.parent][newKey+strings.TrimPrefix(k, f.key)] = true
		}
	}
	r.mu.Unlock()
	r.moved(id, ref{kind: 'd', parent: to.parent, key: newKey}.id())
	return remote.Node{ID: id, Parent: newParent, Kind: remote.KindFolder, Name: newName}, nil
}

// moveFile copies a file to a new key (through a temporary local copy) and
// deletes the old one.
func (r *Repo) moveFile(ctx context.Context, e fileEntry, dst *record, key string) (fileEntry, error) {
	tmp, err := os.CreateTemp(r.whole.dir, "dmsfs-invenio-move-*")
	if err != nil {
		return fileEntry{}, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := r.download(ctx, e, tmp); err != nil {
		return fileEntry{}, fmt.Errorf("move %s: %w", e.Key, err)
	}
	ne, err := r.upload(ctx, dst, key, remote.Content{ReaderAt: tmp, Size: e.Size}, e.Metadata)
	if err != nil {
		return fileEntry{}, err
	}
	if err := r.deleteEntry(ctx, e); err != nil {
		return fileEntry{}, err
	}
	return ne, nil
}

// retitle renames a record: its draft's title changes (a published record
// gets a new-version draft first, as for any change).
func (r *Repo) retitle(ctx context.Context, id remote.ID, f ref, token, title string) (remote.Node, error) {
	updated, _, err := r.updateRecord(ctx, f, token, func(md map[string]any) { md["title"] = title })
	if err != nil {
		return remote.Node{}, fmt.Errorf("rename record: %w", err)
	}
	n := recordNode(updated)
	n.ID = id
	return n, nil
}

// updateRecord changes a record's metadata on its draft (a published record
// gets a new-version draft first, as for any change) and returns the draft
// with the problems the server reported (a draft save does not fail on
// them: the fields in question are left out, spec §3.2). A token other
// than the record's revision is a conflict.
func (r *Repo) updateRecord(ctx context.Context, f ref, token string, change func(md map[string]any)) (*record, []fieldError, error) {
	unlock := r.lock(f.parent)
	defer unlock()
	rec, err := r.working(ctx, f.parent, false)
	if err != nil {
		return nil, nil, err
	}
	if token != "" && token != strconv.Itoa(rec.RevisionID) {
		return nil, nil, fmt.Errorf("record %q: %w", titleName(rec), remote.ErrConflict)
	}
	if rec, err = r.writable(ctx, f.parent); err != nil {
		return nil, nil, err
	}
	// The update takes the whole record: read it, change the metadata,
	// send it back with If-Match. A 412 means the draft changed between
	// the two (a file deleted bumps revision_id too: upstream delete_file
	// commits the record); the change is made on what is there now.
	var updated record
	for attempt := 1; ; attempt++ {
		var full map[string]any
		resp, err := r.call(ctx, http.MethodGet, rec.Links.Self, nil, nil, &full, http.StatusOK)
		if err != nil {
			return nil, nil, err
		}
		md, _ := full["metadata"].(map[string]any)
		if md == nil {
			md = map[string]any{}
		}
		change(md)
		full["metadata"] = md
		delete(full, "errors")
		hdr := http.Header{}
		if etag := strings.Trim(strings.TrimPrefix(resp.Header.Get("ETag"), "W/"), `"`); etag != "" {
			hdr.Set("If-Match", etag)
		}
		_, err = r.call(ctx, http.MethodPut, rec.Links.Self, jsonBody(full), hdr, &updated, http.StatusOK)
		if err == nil {
			break
		}
		if !preconditionFailed(err) || attempt == 3 {
			return nil, nil, fmt.Errorf("update record %q: %w", titleName(rec), err)
		}
		r.log.Debug("invenio: the draft changed while it was updated; reading it again", "record", rec.ID)
	}
	r.remember(&updated)
	return &updated, updated.problems(), nil
}

// upload puts content under key in a draft: init, content (one PUT, or the
// parts of a multipart transfer where the server offers one), commit, and
// a check of the committed checksum. Invenio answers a failed content
// upload with 200 and "errors" and drops the entry; that starts over.
func (r *Repo) upload(ctx context.Context, draft *record, key string, c remote.Content, meta map[string]any) (fileEntry, error) {
	sum, err := md5Of(c)
	if err != nil {
		return fileEntry{}, fmt.Errorf("read %s for upload: %w", key, err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		e, retry, err := r.uploadOnce(ctx, draft, key, c, sum, meta)
		if err == nil {
			return e, nil
		}
		lastErr = err
		if !retry || ctx.Err() != nil {
			break
		}
		r.log.Warn("invenio: upload failed; starting over", "key", key, "attempt", attempt+1, "err", err)
	}
	return fileEntry{}, fmt.Errorf("upload %s: %w", key, lastErr)
}

func md5Of(c remote.Content) ([]byte, error) {
	h := md5.New()
	if c.ReaderAt == nil {
		return h.Sum(nil), nil
	}
	if _, err := io.Copy(h, io.NewSectionReader(c.ReaderAt, 0, c.Size)); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

func (r *Repo) uploadOnce(ctx context.Context, draft *record, key string, c remote.Content, sum []byte, meta map[string]any) (e fileEntry, retry bool, err error) {
	want := "md5:" + hex.EncodeToString(sum)
	// A single upload's checksum is computed by the server from the bytes;
	// the one sent here is what the entry shows until then.
	item := map[string]any{"key": key, "size": c.Size, "checksum": want}
	if len(meta) > 0 {
		item["metadata"] = meta // a replaced or moved file keeps its metadata
	}
	partSize := c.Size
	if c.Size >= r.cfg.MultipartAbove {
		partSize = r.cfg.PartSize
		parts := (c.Size + partSize - 1) / partSize
		item["transfer"] = map[string]any{"type": "M", "parts": parts, "part_size": partSize}
		// Not for a multipart transfer: the server would keep it as it
		// is, unverified, and compute none of its own (upstream
		// MultipartTransfer.commit_file). Without it, the server's
		// background task computes the md5, which is then checked.
		delete(item, "checksum")
	}
	var list fileList
	if _, err := r.call(ctx, http.MethodPost, draft.Links.Files, jsonBody([]any{item}), nil, &list, http.StatusCreated, http.StatusOK); err != nil {
		// The answer may have been lost after the entry was made (a new
		// init then fails on the duplicate key), or an earlier try may
		// have left one: look at the draft's entries.
		cur, ok := r.entryNow(ctx, draft, key)
		switch {
		case ok && cur.Status == "completed" && cur.Checksum == want && cur.Size == c.Size && answerLost(err):
			r.noteFile(draft, key, &cur)
			return cur, false, nil
		case ok && cur.Status != "completed":
			r.log.Info("invenio: removing a pending entry an interrupted upload left", "key", key, "err", err)
			if derr := r.deleteEntry(ctx, cur); derr == nil {
				return e, true, err
			}
		}
		return e, false, err
	}
	found := false
	for _, le := range list.Entries {
		if le.Key == key {
			e, found = le, true
		}
	}
	if !found || e.Links.Self == "" {
		return e, false, fmt.Errorf("init answer lists no entry for the key: %w", remote.ErrProtocol)
	}
	committed := false
	defer func() {
		if !committed {
			// Leave no pending entry behind.
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*1e9)
			defer cancel()
			_ = r.deleteEntry(dctx, e)
		}
	}()
	switch {
	case len(e.Links.Parts) > 0:
		if err := r.putParts(ctx, e, c, partSize); err != nil {
			return e, true, err
		}
	case e.Links.Content != "":
		// No parts offered (a server before v13 ignores "transfer"): one PUT.
		var answer struct {
			Errors any `json:"errors"`
		}
		hdr := http.Header{"Content-Md5": {base64.StdEncoding.EncodeToString(sum)}}
		b := &body{ra: c.ReaderAt, size: c.Size, contentType: "application/octet-stream"}
		if c.ReaderAt == nil {
			b.ra = strings.NewReader("")
		}
		if _, err := r.call(ctx, http.MethodPut, e.Links.Content, b, hdr, &answer, http.StatusOK); err != nil {
			return e, errors.Is(err, remote.ErrUnavailable), err
		}
		if answer.Errors != nil && fmt.Sprint(answer.Errors) != "" && fmt.Sprint(answer.Errors) != "[]" {
			return e, true, fmt.Errorf("the server reported: %v: %w", answer.Errors, remote.ErrUnavailable)
		}
	default:
		return e, false, fmt.Errorf("init answer has neither content nor parts link: %w", remote.ErrProtocol)
	}
	if e.Links.Commit != "" {
		var done fileEntry
		if _, err := r.call(ctx, http.MethodPost, e.Links.Commit, jsonBody(map[string]any{}), nil, &done, http.StatusOK, http.StatusCreated); err != nil {
			// The commit may have happened with its answer lost.
			cur, ok := r.entryNow(ctx, draft, key)
			if !ok || cur.Status != "completed" || !answerLost(err) {
				return e, answerLost(err), err
			}
			r.log.Info("invenio: the answer to a commit was lost; the file is committed", "key", key, "err", err)
			done = cur
		}
		if done.Key != "" {
			e = done
		}
	}
	if e.Status != "" && e.Status != "completed" {
		return e, true, fmt.Errorf("file is %q after commit: %w", e.Status, remote.ErrUnavailable)
	}
	if e.Checksum == "" {
		// Local storage commits a multipart transfer without a checksum
		// (v13+; spec §3.4 says it has one): wait for the server's.
		if e, err = r.awaitChecksum(ctx, draft, key, c.Size, want); err != nil {
			return e, true, err
		}
	}
	switch {
	case strings.HasPrefix(e.Checksum, "multipart:"):
		// Filled in later by the server; remember ours meanwhile.
		r.mu.Lock()
		r.sums[e.Checksum] = want
		r.mu.Unlock()
	case e.Checksum != want:
		return e, true, fmt.Errorf("checksum after upload is %q, expected %q: %w", e.Checksum, want, remote.ErrUnavailable)
	}
	if e.Size != c.Size {
		return e, true, fmt.Errorf("size after upload is %d, expected %d: %w", e.Size, c.Size, remote.ErrUnavailable)
	}
	committed = true
	r.noteFile(draft, key, &e)
	return e, false, nil
}

// awaitChecksum waits for the checksum the server computes in the
// background after a multipart commit (recompute_multipart_checksum_task),
// for up to ChecksumWait; then it reads the file back and compares its md5
// itself. Until one of them agrees, the upload is not done: the caller
// keeps its copy of the bytes.
func (r *Repo) awaitChecksum(ctx context.Context, draft *record, key string, size int64, want string) (fileEntry, error) {
	deadline := time.Now().Add(r.cfg.ChecksumWait)
	var e fileEntry
	for attempt := 1; ; attempt++ {
		cur, ok := r.entryNow(ctx, draft, key)
		if ok {
			e = cur
		}
		if ok && cur.Checksum != "" {
			return cur, nil
		}
		wait := checksumPolicy.Delay(attempt)
		if time.Now().Add(wait).After(deadline) {
			break
		}
		if err := backoff.Sleep(ctx, wait); err != nil {
			return e, err
		}
	}
	if e.Links.Content == "" {
		return e, fmt.Errorf("%s: no checksum after commit, and no content link to read it back: %w", key, remote.ErrUnavailable)
	}
	r.log.Info("invenio: the server computed no checksum yet; reading the file back to check it", "key", key, "waited", r.cfg.ChecksumWait.String())
	resp, err := r.get(ctx, e.Links.Content, nil)
	if err != nil {
		return e, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return e, errorFrom(resp)
	}
	h := md5.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		return e, fmt.Errorf("read %s back: %w: %w", key, remote.ErrUnavailable, err)
	}
	if got := "md5:" + hex.EncodeToString(h.Sum(nil)); got != want || n != size {
		return e, fmt.Errorf("%s reads back as %d bytes with %s, expected %d with %s: %w", key, n, got, size, want, remote.ErrUnavailable)
	}
	e.Checksum, e.Size = want, size // read back: it is what was sent
	return e, nil
}

// checksumPolicy paces the looks for a checksum the server computes.
var checksumPolicy = backoff.Policy{Base: 100 * time.Millisecond, Max: 5 * time.Second}

// preconditionFailed tells a 412 (If-Match no longer matches).
func preconditionFailed(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Status == http.StatusPreconditionFailed
}

// answerLost tells a failure after which the server may have done what
// was asked (connection lost, answer cut or unreadable) from a refusal.
func answerLost(err error) bool {
	return errors.Is(err, remote.ErrUnavailable) || errors.Is(err, remote.ErrProtocol)
}

// entryNow returns key's entry in the draft as the server has it now,
// pending or not.
func (r *Repo) entryNow(ctx context.Context, draft *record, key string) (fileEntry, bool) {
	var fl fileList
	if err := r.getJSON(ctx, draft.Links.Files, &fl); err != nil {
		return fileEntry{}, false
	}
	for _, e := range fl.Entries {
		if e.Key == key {
			return e, true
		}
	}
	return fileEntry{}, false
}

// putParts uploads a multipart transfer's parts, four at a time; a part
// that fails is sent again.
func (r *Repo) putParts(ctx context.Context, e fileEntry, c remote.Content, partSize int64) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, p := range e.Links.Parts {
		off := int64(p.Part-1) * partSize
		if p.Part < 1 || off >= c.Size {
			return fmt.Errorf("part %d out of range: %w", p.Part, remote.ErrProtocol)
		}
		size := min(partSize, c.Size-off)
		g.Go(func() error {
			h := md5.New()
			if _, err := io.Copy(h, io.NewSectionReader(c.ReaderAt, off, size)); err != nil {
				return err
			}
			hdr := http.Header{"Content-Md5": {base64.StdEncoding.EncodeToString(h.Sum(nil))}}
			b := &body{ra: c.ReaderAt, off: off, size: size, contentType: "application/octet-stream"}
			_, err := r.call(gctx, http.MethodPut, p.URL, b, hdr, nil, http.StatusOK, http.StatusCreated, http.StatusNoContent)
			if err != nil {
				return fmt.Errorf("part %d: %w", p.Part, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// PublishPlan compares the draft of the record holding id with the
// published version it follows.
func (r *Repo) PublishPlan(ctx context.Context, id remote.ID) (remote.PublishPlan, error) {
	f, ok := r.resolve(id)
	if !ok {
		return remote.PublishPlan{}, fmt.Errorf("%s: %w", id, remote.ErrNotFound)
	}
	rec, err := r.working(ctx, f.parent, false)
	if err != nil {
		return remote.PublishPlan{}, err
	}
	plan := remote.PublishPlan{Title: titleName(rec), Record: rec.ID, Version: rec.Versions.Index, URL: r.base.String() + "/uploads/" + rec.ID}
	if !rec.IsDraft {
		plan.NoDraft = true
		return plan, nil
	}
	files, err := r.files(ctx, rec)
	if err != nil {
		return plan, err
	}
	hist, err := r.published(ctx, rec)
	if err != nil {
		return plan, err
	}
	old := map[string]fileEntry{}
	if len(hist) > 0 {
		old = hist[len(hist)-1].files
	}
	for k, e := range files {
		name := displayKey(k)
		switch o, ok := old[k]; {
		case !ok:
			plan.Added = append(plan.Added, name)
		case r.checksum(o.Checksum) != r.checksum(e.Checksum):
			plan.Changed = append(plan.Changed, name)
		default:
			plan.Unchanged = append(plan.Unchanged, name)
		}
	}
	for k := range old {
		if _, ok := files[k]; !ok {
			plan.Removed = append(plan.Removed, displayKey(k))
		}
	}
	for _, l := range [][]string{plan.Added, plan.Changed, plan.Removed, plan.Unchanged} {
		sort.Strings(l)
	}
	return plan, nil
}

// displayKey shows a key as the path it has in the mount.
func displayKey(k string) string {
	if !splittable(k) {
		return k
	}
	parts := strings.Split(k, "/")
	for i, p := range parts {
		parts[i] = decodeName(p)
	}
	return filepath.Join(parts...)
}

// Publish publishes the draft of the record holding id. A repository that
// requires a review answers 403; the error says so.
func (r *Repo) Publish(ctx context.Context, id remote.ID) (remote.PublishPlan, error) {
	f, ok := r.resolve(id)
	if !ok {
		return remote.PublishPlan{}, fmt.Errorf("%s: %w", id, remote.ErrNotFound)
	}
	unlock := r.lock(f.parent)
	defer unlock()
	plan, err := r.PublishPlan(ctx, id)
	if err != nil || plan.NoDraft {
		return plan, err
	}
	rec, err := r.working(ctx, f.parent, true)
	if err != nil {
		return plan, err
	}
	if rec.Links.Publish == "" {
		return plan, fmt.Errorf("record %q cannot be published directly (no publish link): it needs a review or publish request; open %s: %w",
			plan.Title, plan.URL, remote.ErrPermission)
	}
	var pub record
	_, err = r.call(ctx, http.MethodPost, rec.Links.Publish, nil, nil, &pub, http.StatusAccepted, http.StatusOK, http.StatusCreated)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusForbidden {
		return plan, fmt.Errorf("the repository does not let you publish %q directly; it requires a review request (submit the draft for review at %s): %w",
			plan.Title, plan.URL, remote.ErrPermission)
	}
	if err != nil {
		return plan, fmt.Errorf("publish %q: %w", plan.Title, err)
	}
	if pub.ID != "" {
		r.remember(&pub)
	} else {
		r.mu.Lock()
		delete(r.recs, f.parent)
		r.mu.Unlock()
	}
	r.log.Info("invenio: published", "record", pub.ID, "version", pub.Versions.Index)
	return plan, nil
}
