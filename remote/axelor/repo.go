package axelor

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dmsfs/dmsfs/remote"
)

// listFields are the fields a listing asks for (dotted ones come back as
// flat keys). metaFile itself is left out on purpose (spec §4.1).
var listFields = []string{"fileName", "isDirectory", "relatedModel", "relatedId", "createdOn", "updatedOn", "parent.id",
	"metaFile.id", "metaFile.version", "metaFile.fileSize", "metaFile.createdOn", "metaFile.updatedOn", "metaFile.description"}

// searchFields is a search asking for fields, its rows as maps.
func (c *Client) searchFields(ctx context.Context, fields []string, domain string, params map[string]any, sortBy []string) ([]map[string]any, error) {
	var all []map[string]any
	err := c.searchPages(ctx, fields, domain, params, sortBy, func(raw []byte) (int, int, error) {
		rows, total, err := parseRows(http.MethodPost, restPath+"/search", raw)
		all = append(all, rows...)
		return len(rows), total, err
	})
	return all, err
}

// searchPages runs a DMSFile search page by page; page reads each
// answer and says how many rows it held and how many there are in all.
func (c *Client) searchPages(ctx context.Context, fields []string, domain string, params map[string]any, sortBy []string,
	page func(raw []byte) (n, total int, err error)) error {
	dctx := map[string]any{"_populate": false}
	for k, v := range params {
		dctx[k] = v
	}
	for offset := 0; ; {
		req := map[string]any{"offset": offset, "limit": pageSize, "sortBy": sortBy, "fields": fields,
			"data": map[string]any{"_domain": domain, "_domainContext": dctx}}
		raw, err := c.callRaw(ctx, http.MethodPost, restPath+"/search", req, true)
		if err != nil {
			return err
		}
		n, total, err := page(raw)
		if err != nil {
			return err
		}
		offset += n
		if n == 0 || offset >= total {
			return nil
		}
	}
}

func numID(id remote.ID) (int64, error) {
	n, err := strconv.ParseInt(string(id), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("axelor: node %q: %w", id, remote.ErrNotFound)
	}
	return n, nil
}

func str(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case json.Number:
		return s.String()
	}
	return ""
}

func num(v any) int64 {
	n, _ := strconv.ParseInt(str(v), 10, 64)
	return n
}

// parseTime reads Axelor's ISO times, whose seconds and fraction are left
// out when zero.
func parseTime(v any) time.Time {
	s := str(v)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00", "2006-01-02T15:04:05.999999999", "2006-01-02T15:04"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// node converts a search row.
func (c *Client) node(r row) (remote.Node, error) {
	id := num(r.ID)
	name := r.FileName
	if id <= 0 || name == "" {
		return remote.Node{}, fmt.Errorf("axelor: a row lacks id or fileName: %w", remote.ErrProtocol)
	}
	n := remote.Node{ID: remote.ID(strconv.FormatInt(id, 10)), Name: name, Token: string(r.Version), Parent: RootID}
	if p := num(r.ParentID); p > 0 {
		n.Parent = remote.ID(strconv.FormatInt(p, 10))
	}
	if rec, ok := attachedTo(r); ok {
		n.Parent = rec // shown in its record's folder, not its home's
	}
	n.ModTime = parseTime(r.UpdatedOn)
	if n.ModTime.IsZero() {
		n.ModTime = parseTime(r.CreatedOn)
	}
	if r.IsDirectory {
		n.Kind = remote.KindFolder
		return n, nil
	}
	n.Kind = remote.KindDocument
	f := remote.File{Name: name, ContentID: "empty"}
	if mid := num(r.MetaID); mid > 0 {
		f.Size = num(r.MetaSize)
		// A MetaFile's bytes never change (a new content is a new
		// MetaFile); its version moves with its description, which is
		// no change of the content.
		f.ContentID = "m" + strconv.FormatInt(mid, 10)
		f.ModTime = parseTime(r.MetaUpdatedOn)
		if f.ModTime.IsZero() {
			f.ModTime = parseTime(r.MetaCreatedOn)
		}
	}
	if f.ModTime.IsZero() {
		f.ModTime = n.ModTime
	}
	n.Files = []remote.File{f}
	c.remember(n.ID, f, r.MetaDescription)
	return n, nil
}

func (c *Client) Root(ctx context.Context) (remote.Node, error) {
	return remote.Node{ID: RootID, Kind: remote.KindFolder, Token: "0"}, nil
}

func (c *Client) Stat(ctx context.Context, id remote.ID) (remote.Node, error) {
	if id == RootID {
		return c.Root(ctx)
	}
	if a, ok := parseAtt(id); ok {
		return a.node(), nil
	}
	n, _, err := c.stat(ctx, id)
	return n, err
}

// stat returns a node and its current MetaFile id.
func (c *Client) stat(ctx context.Context, id remote.ID) (remote.Node, int64, error) {
	nid, err := numID(id)
	if err != nil {
		return remote.Node{}, 0, err
	}
	rows, err := c.search(ctx, "self.id = :id", map[string]any{"id": nid}, nil)
	if err != nil {
		return remote.Node{}, 0, err
	}
	if len(rows) == 0 {
		return remote.Node{}, 0, fmt.Errorf("axelor: node %s: %w", id, remote.ErrNotFound)
	}
	n, err := c.node(rows[0])
	return n, num(rows[0].MetaID), err
}

func (c *Client) List(ctx context.Context, folder remote.ID) ([]remote.Node, error) {
	if a, ok := parseAtt(folder); ok {
		return c.listAttachments(ctx, a)
	}
	domain, params := "self.parent IS NULL", map[string]any(nil)
	var self remote.Node
	var g errgroup.Group
	if folder != RootID {
		nid, err := numID(folder)
		if err != nil {
			return nil, err
		}
		domain, params = "self.parent.id = :pid", map[string]any{"pid": nid}
		// A search of a missing folder's children is empty, not an
		// error: the folder itself is looked up beside it, at once, so
		// that a listing costs one round trip.
		g.Go(func() (err error) {
			self, err = c.Stat(ctx, folder)
			return err
		})
	}
	var rows []row
	g.Go(func() (err error) {
		rows, err = c.search(ctx, domain, params, []string{"id"})
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if folder != RootID && self.Kind != remote.KindFolder {
		return nil, fmt.Errorf("axelor: list %s: %w", folder, remote.ErrNotFolder)
	}
	out := make([]remote.Node, 0, len(rows))
	for _, row := range rows {
		if row.RelatedModel != "" {
			// The version store, and record attachments with their
			// home folders: shown in /.attachments instead.
			continue
		}
		n, err := c.node(row)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

func (c *Client) Open(ctx context.Context, doc remote.ID, file string, off, length int64) (io.ReadCloser, error) {
	info, known := c.known(doc)
	if !known || info.name != file {
		n, err := c.Stat(ctx, doc)
		if err != nil {
			return nil, err
		}
		if n.Kind != remote.KindDocument {
			return nil, fmt.Errorf("axelor: %s: %w", doc, remote.ErrIsFolder)
		}
		info = fileInfo{name: n.Files[0].Name, size: n.Files[0].Size}
	}
	if info.name != file {
		return nil, fmt.Errorf("axelor: document %s has no file %q: %w", doc, file, remote.ErrNotFound)
	}
	return c.download(ctx, doc, info.size, off, length)
}

// download reads [off, off+length) of a document's bytes. A 206 is used as
// is; a 200 (no Range support) is skipped forward; a 416 is the end.
func (c *Client) download(ctx context.Context, id remote.ID, size, off, length int64) (io.ReadCloser, error) {
	if off >= size || length == 0 {
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	end := size - 1 // the server computes Content-Length from the end asked for: clamp it
	if length > 0 {
		end = min(off+length-1, size-1)
	}
	hdr := http.Header{"Range": {fmt.Sprintf("bytes=%d-%d", off, end)}}
	resp, err := c.send(ctx, http.MethodGet, "/ws/dms/download/"+string(id), "", nil, hdr, true)
	if err != nil {
		return nil, err
	}
	want := end - off + 1
	switch resp.StatusCode {
	case http.StatusPartialContent:
		return struct {
			io.Reader
			io.Closer
		}{io.LimitReader(resp.Body, want), resp.Body}, nil
	case http.StatusOK:
		if _, err := io.CopyN(io.Discard, resp.Body, off); err != nil {
			resp.Body.Close()
			return nil, fmt.Errorf("axelor: download %s: %w: %v", id, remote.ErrUnavailable, err)
		}
		return struct {
			io.Reader
			io.Closer
		}{io.LimitReader(resp.Body, want), resp.Body}, nil
	case http.StatusRequestedRangeNotSatisfiable:
		resp.Body.Close()
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	return nil, fmt.Errorf("axelor: download %s: HTTP %d %s: %w", id, resp.StatusCode, snippet(b), httpErr(resp.StatusCode))
}

func parentRef(parent remote.ID) (any, error) {
	if parent == RootID {
		return nil, nil
	}
	pid, err := numID(parent)
	if err != nil {
		return nil, err
	}
	return map[string]any{"id": pid}, nil
}

// createFolder saves a new folder. Its node is built from the save
// answer (id, version, createdOn): no stat.
func (c *Client) createFolder(ctx context.Context, parent remote.ID, name string, data map[string]any) (remote.Node, error) {
	row, err := c.createRow(ctx, data)
	if err != nil {
		return remote.Node{}, err
	}
	return savedNode(row, parent, name, remote.KindFolder)
}

// savedNode is the node a save answer's row describes (id, version,
// times); the caller knows its parent and name.
func savedNode(row map[string]any, parent remote.ID, name string, kind remote.Kind) (remote.Node, error) {
	id := num(row["id"])
	if id <= 0 {
		return remote.Node{}, fmt.Errorf("axelor: the save answer has no id: %w", remote.ErrProtocol)
	}
	n := remote.Node{ID: remote.ID(strconv.FormatInt(id, 10)), Parent: parent, Kind: kind,
		Name: name, Token: str(row["version"]), ModTime: parseTime(row["updatedOn"])}
	if n.ModTime.IsZero() {
		n.ModTime = parseTime(row["createdOn"])
	}
	return n, nil
}

func (c *Client) Mkdir(ctx context.Context, parent remote.ID, name string) (remote.Node, error) {
	if name == "" {
		return remote.Node{}, fmt.Errorf("axelor: empty name: %w", remote.ErrInvalidName)
	}
	if _, ok := parseAtt(parent); ok {
		return remote.Node{}, fmt.Errorf("axelor: %q: record attachments are files, no folders: %w", name, remote.ErrPermission)
	}
	data := map[string]any{"fileName": name, "isDirectory": true}
	if ref, err := parentRef(parent); err != nil {
		return remote.Node{}, err
	} else if ref != nil {
		data["parent"] = ref
	}
	// One round trip: the parent is not checked first (the server refuses
	// a create under a document or a missing folder), only after a failure,
	// for a clearer reason.
	n, err := c.createFolder(ctx, parent, name, data)
	if err == nil {
		return n, nil
	}
	if !errors.Is(err, remote.ErrNotFound) {
		// The answer may have been lost after the folder was made: the
		// folder did not exist before (the filesystem checked), so one
		// there now is this one.
		if f, ok := c.childNamed(ctx, parent, name, true); ok {
			c.log.Info("axelor: the answer to a mkdir was lost; the folder is there", "name", name, "err", err)
			return f, nil
		}
	}
	if cerr := c.checkFolder(ctx, parent); cerr != nil {
		return remote.Node{}, cerr
	}
	if errors.Is(err, remote.ErrNotFound) {
		return remote.Node{}, err
	}
	return remote.Node{}, c.denied(ctx, err, "write", parent)
}

// childNamed finds a folder's child by name and kind.
func (c *Client) childNamed(ctx context.Context, parent remote.ID, name string, folder bool) (remote.Node, bool) {
	kids, err := c.List(ctx, parent)
	if err != nil {
		return remote.Node{}, false
	}
	for _, k := range kids {
		if k.Name == name && (k.Kind == remote.KindFolder) == folder {
			return k, true
		}
	}
	return remote.Node{}, false
}

// checkFolder makes sure a node is an existing folder before something is
// created in it (the server answers such mistakes only with a translated
// message).
func (c *Client) checkFolder(ctx context.Context, id remote.ID) error {
	if id == RootID {
		return nil
	}
	n, err := c.Stat(ctx, id)
	if err != nil {
		return err
	}
	if n.Kind != remote.KindFolder {
		return fmt.Errorf("axelor: %s: %w", id, remote.ErrNotFolder)
	}
	return nil
}

func (c *Client) Insert(ctx context.Context, parent remote.ID, name string, content remote.Content) (remote.Node, error) {
	if name == "" {
		return remote.Node{}, fmt.Errorf("axelor: empty name: %w", remote.ErrInvalidName)
	}
	if a, ok := parseAtt(parent); ok {
		return c.attach(ctx, a, name, content)
	}
	ref, err := parentRef(parent)
	if err != nil {
		return remote.Node{}, err
	}
	seq := c.docs.begin()
	meta, staged := c.take(content)
	if !staged {
		var err error
		if meta, err = c.upload(ctx, name, content); err != nil {
			c.docs.abandon(seq)
			return remote.Node{}, err
		}
	}
	data := map[string]any{"fileName": name, "isDirectory": false, "metaFile": map[string]any{"id": meta.id}}
	if ref != nil {
		data["parent"] = ref
	}
	row, err := c.docs.create(ctx, seq, data, meta.id)
	if err != nil {
		// The answer may have been lost after the document was made: one
		// pointing at this upload's MetaFile can only be ours.
		n, ok, werr := c.withMeta(ctx, parent, name, meta.id)
		if ok {
			c.log.Info("axelor: the answer to a create was lost; the document is there", "name", name, "err", err)
			c.remember(n.ID, n.Files[0], "")
			return n, nil
		}
		switch {
		case werr != nil && !refused(err):
			// Nobody can tell whether the document was made: its
			// MetaFile is kept (and stays taken, if staged), garbage at
			// worst, never a document whose content was discarded.
		case staged:
			c.untake(content) // the caller may try again with it, or discard it
		default:
			c.discard(ctx, meta.id)
		}
		if cerr := c.checkFolder(ctx, parent); cerr != nil {
			return remote.Node{}, cerr // a clearer reason than the translated message
		}
		return remote.Node{}, c.denied(ctx, err, "write", parent)
	}
	// The answer and the upload together describe the document: no stat.
	return c.docNode(row, parent, name, meta)
}

// withMeta finds the document named name in parent that points at the
// MetaFile mid; an error if it could not look.
func (c *Client) withMeta(ctx context.Context, parent remote.ID, name string, mid int64) (remote.Node, bool, error) {
	kids, err := c.List(ctx, parent)
	if err != nil {
		return remote.Node{}, false, err
	}
	for _, k := range kids {
		if k.Name != name || k.Kind != remote.KindDocument {
			continue
		}
		n, meta, err := c.stat(ctx, k.ID)
		if err != nil {
			return remote.Node{}, false, err
		}
		if meta == mid {
			return n, true, nil
		}
	}
	return remote.Node{}, false, nil
}

// docNode builds a document node from a save answer and the MetaFile it
// points at.
func (c *Client) docNode(row map[string]any, parent remote.ID, name string, meta uploaded) (remote.Node, error) {
	n, err := savedNode(row, parent, name, remote.KindDocument)
	if err != nil {
		return remote.Node{}, err
	}
	f := remote.File{Name: name, Size: meta.size, ModTime: meta.created,
		ContentID: "m" + strconv.FormatInt(meta.id, 10)}
	if f.ModTime.IsZero() {
		f.ModTime = n.ModTime
	}
	n.Files = []remote.File{f}
	c.remember(n.ID, f, "")
	return n, nil
}

func (c *Client) Replace(ctx context.Context, doc remote.ID, token, file string, content remote.Content) (_ remote.Node, err error) {
	// A content of one chunk travels beside the stat that checks the
	// version: each is a round trip and the upload does not depend on the
	// stat. A stat that refuses discards the upload once it is done (one
	// cut short might have made its MetaFile all the same). Larger
	// contents wait for the stat: a refusal would waste their upload.
	var early chan uploadResult
	applied := false // the document points at meta, or may: it is no longer staged
	meta, staged := c.take(content)
	if staged {
		early = make(chan uploadResult, 1)
		early <- uploadResult{meta, nil}
		defer func() {
			if err != nil && !applied {
				c.untake(content) // a retry or a conflict copy may use it
			}
		}()
	} else if content.Size <= int64(c.chunk) {
		early = make(chan uploadResult, 1)
		go func() {
			m, err := c.upload(ctx, file, content)
			early <- uploadResult{m, err}
		}()
	}
	cur, oldMeta, err := c.stat(ctx, doc)
	if err == nil {
		err = replaceable(cur, doc, token, file)
	}
	if err != nil {
		if early != nil && !staged {
			if u := <-early; u.err == nil {
				c.discard(context.WithoutCancel(ctx), u.meta.id)
			}
		}
		return remote.Node{}, err
	}
	oldInfo, _ := c.known(doc) // as the stat just saw it
	oldDesc := oldInfo.description
	if early != nil {
		u := <-early
		meta, err = u.meta, u.err
	} else {
		meta, err = c.upload(ctx, file, content)
	}
	if err != nil {
		return remote.Node{}, err
	}
	var n remote.Node
	row, err := c.updateRow(ctx, doc, token, map[string]any{"metaFile": map[string]any{"id": meta.id}})
	if err == nil {
		applied = true
		// The answer and the upload describe the document: no stat
		// (unless the answer lacks what it should have).
		if n, err = c.docNode(row, cur.Parent, cur.Name, meta); err != nil {
			n, err = c.Stat(ctx, doc)
			if err != nil {
				return remote.Node{}, err // applied: the upload is the document's now
			}
		}
	} else if now, m, serr := c.stat(ctx, doc); serr == nil && m == meta.id {
		// The answer was lost after the change was made.
		c.log.Info("axelor: the answer to a replace was lost; the change is there", "document", cur.Name, "err", err)
		n, err = now, nil
	} else if serr != nil && !refused(err) {
		// No answer, and no stat to tell: the document may point at
		// the MetaFile now. It is kept (and stays taken, if staged); the
		// retry's stat shows whether the change was made. Discarding it
		// lost the content of an applied re-point (TestFaults, cut-body
		// at 50 %).
		applied = true
	}
	if err != nil {
		if !staged && !applied {
			c.discard(ctx, meta.id)
		}
		return remote.Node{}, c.denied(ctx, err, "write", doc)
	}
	if oldDesc != "" {
		// The description belongs to the content's MetaFile: the new one
		// takes it over.
		if derr := c.describe(ctx, meta.id, int64(meta.version), oldDesc); derr != nil {
			c.log.Warn("axelor: the description could not be kept with the new content", "document", cur.Name, "err", derr)
		} else {
			c.remember(n.ID, n.Files[0], oldDesc)
		}
	}
	if oldMeta > 0 {
		// Keep the superseded content as a version (spec §7.2).
		nid, _ := numID(doc)
		_, _, verr := c.call(ctx, http.MethodPut, restPath, map[string]any{"data": map[string]any{
			"fileName": cur.Name + " @ " + time.Now().UTC().Format(time.RFC3339), "isDirectory": false,
			"metaFile": map[string]any{"id": oldMeta}, "relatedModel": dmsModel, "relatedId": nid}}, false)
		if verr != nil {
			c.log.Warn("axelor: the previous content could not be kept as a version", "document", cur.Name, "err", verr)
		}
	}
	return n, nil
}

// staged is a MetaFile uploaded before the document it goes into was
// known (Stage).
type staged struct {
	c    *Client
	meta uploaded
	used atomic.Bool // taken by an Insert or Replace under way or done, or discarded
}

var _ remote.Stager = (*Client)(nil)

// Stage uploads content as a MetaFile that an Insert or Replace given it
// in Content.Staged points the document at.
func (c *Client) Stage(ctx context.Context, name string, content remote.Content) (remote.Staged, error) {
	m, err := c.upload(ctx, name, content)
	if err != nil {
		return nil, err
	}
	return &staged{c: c, meta: m}, nil
}

func (s *staged) Discard(ctx context.Context) {
	if s.used.CompareAndSwap(false, true) {
		s.c.discard(context.WithoutCancel(ctx), s.meta.id)
	}
}

// take returns the MetaFile content was staged as, if this client staged
// it and nothing took it yet.
func (c *Client) take(content remote.Content) (uploaded, bool) {
	s, ok := content.Staged.(*staged)
	if !ok || s.c != c || s.meta.size != content.Size || !s.used.CompareAndSwap(false, true) {
		return uploaded{}, false
	}
	return s.meta, true
}

// untake gives back the staged MetaFile take returned, after a save that
// took it failed without using it.
func (c *Client) untake(content remote.Content) {
	content.Staged.(*staged).used.Store(false)
}

type uploadResult struct {
	meta uploaded
	err  error
}

// replaceable tells why a Replace of file in cur (document doc, as the
// change's token saw it) cannot go ahead, if it cannot.
func replaceable(cur remote.Node, doc remote.ID, token, file string) error {
	if cur.Kind != remote.KindDocument {
		return fmt.Errorf("axelor: %s: %w", doc, remote.ErrIsFolder)
	}
	if file != cur.Files[0].Name {
		return fmt.Errorf("axelor: document %s has no file %q: %w", doc, file, remote.ErrNotFound)
	}
	if cur.Token != token {
		return fmt.Errorf("axelor: %q has version %s, the change was based on %s: %w", cur.Name, cur.Token, token, remote.ErrConflict)
	}
	return nil
}

// update changes a DMSFile; the version is always sent (without it the
// server silently applies nothing).
func (c *Client) update(ctx context.Context, id remote.ID, token string, data map[string]any) (remote.Node, error) {
	if _, err := c.updateRow(ctx, id, token, data); err != nil {
		return remote.Node{}, err
	}
	return c.Stat(ctx, id)
}

// updateRow is update without the stat: the saved record as answered.
func (c *Client) updateRow(ctx context.Context, id remote.ID, token string, data map[string]any) (map[string]any, error) {
	v, err := strconv.Atoi(token)
	if err != nil {
		return nil, fmt.Errorf("axelor: %s: no valid version %q to update with: %w", id, token, remote.ErrConflict)
	}
	data["version"] = v
	rows, _, err := c.call(ctx, http.MethodPost, restPath+"/"+string(id), map[string]any{"data": data}, false)
	if err != nil {
		return nil, err
	}
	if len(rows) != 1 || str(rows[0]["version"]) == token {
		return nil, fmt.Errorf("axelor: update of %s was not applied: %w", id, remote.ErrProtocol)
	}
	return rows[0], nil
}

func (c *Client) Append(ctx context.Context, doc remote.ID, token, file string, content remote.Content) (remote.Node, error) {
	return remote.Node{}, fmt.Errorf("axelor documents hold one file: %w", remote.ErrUnsupported)
}

func (c *Client) DeleteFile(ctx context.Context, doc remote.ID, token, file string) (remote.Node, error) {
	return remote.Node{}, fmt.Errorf("axelor documents hold one file: %w", remote.ErrUnsupported)
}

func (c *Client) Rename(ctx context.Context, id remote.ID, token string, newParent remote.ID, newName string) (remote.Node, error) {
	if newName == "" {
		return remote.Node{}, fmt.Errorf("axelor: empty name: %w", remote.ErrInvalidName)
	}
	if id == RootID {
		return remote.Node{}, fmt.Errorf("axelor: rename the root: %w", remote.ErrPermission)
	}
	if _, ok := parseAtt(id); ok {
		return remote.Node{}, fmt.Errorf("axelor: the attachments view is fixed: %w", remote.ErrPermission)
	}
	if err := c.checkFolder(ctx, newParent); err != nil {
		return remote.Node{}, err
	}
	if _, toAtt := parseAtt(newParent); toAtt {
		return c.renameAttachment(ctx, id, token, newParent, newName)
	}
	ref, err := parentRef(newParent)
	if err != nil {
		return remote.Node{}, err
	}
	cur, err := c.Stat(ctx, id)
	if err != nil {
		return remote.Node{}, err
	}
	if _, attached := parseAtt(cur.Parent); attached {
		return remote.Node{}, fmt.Errorf("axelor: %q: an attachment stays with its record: %w", cur.Name, remote.ErrUnsupported)
	}
	if cur.Name == newName && cur.Parent == newParent {
		if cur.Token != token {
			return remote.Node{}, fmt.Errorf("axelor: %q: %w", cur.Name, remote.ErrConflict)
		}
		return cur, nil
	}
	n, err := c.update(ctx, id, token, map[string]any{"fileName": newName, "parent": ref})
	if err != nil && !errors.Is(err, remote.ErrConflict) {
		// The answer may have been lost after the change was made.
		if now, serr := c.Stat(ctx, id); serr == nil && now.Name == newName && now.Parent == newParent && now.Token != token {
			c.log.Info("axelor: the answer to a rename was lost; the change is there", "name", newName, "err", err)
			return now, nil
		}
		return n, c.denied(ctx, err, "write", id, newParent)
	}
	return n, err
}

func (c *Client) Delete(ctx context.Context, id remote.ID, token string) error {
	if id == RootID {
		return fmt.Errorf("axelor: delete the root: %w", remote.ErrPermission)
	}
	if _, ok := parseAtt(id); ok {
		return fmt.Errorf("axelor: the attachments view is fixed: %w", remote.ErrPermission)
	}
	nid, err := numID(id)
	if err != nil {
		return err
	}
	n, err := c.Stat(ctx, id)
	if err != nil {
		return err
	}
	if n.Kind == remote.KindFolder {
		// The server deletes a whole subtree; rmdir must not.
		kids, err := c.List(ctx, id)
		if err != nil {
			return err
		}
		if len(kids) > 0 {
			return fmt.Errorf("axelor: folder %q: %w", n.Name, remote.ErrNotEmpty)
		}
	}
	v, err := strconv.Atoi(token)
	if err != nil {
		return fmt.Errorf("axelor: %s: version %q: %w", id, token, remote.ErrConflict)
	}
	_, _, err = c.call(ctx, http.MethodPost, restPath+"/removeAll", map[string]any{"records": []any{map[string]any{"id": nid, "version": v}}}, false)
	if err != nil && !errors.Is(err, remote.ErrConflict) {
		// The answer may have been lost after the delete was done.
		if _, serr := c.Stat(ctx, id); errors.Is(serr, remote.ErrNotFound) {
			c.log.Info("axelor: the answer to a delete was lost; the document is gone", "name", n.Name, "err", err)
			return nil
		}
		return c.denied(ctx, err, "remove", id)
	}
	return err
}

// discard removes an uploaded MetaFile nobody uses, through a throw-away
// DMSFile (spec §4.10); failures only leave garbage behind.
func (c *Client) discard(ctx context.Context, mid int64) {
	rows, _, err := c.call(ctx, http.MethodPut, restPath, map[string]any{"data": map[string]any{
		"fileName": ".dmsfs-discard", "isDirectory": false, "metaFile": map[string]any{"id": mid},
		"relatedModel": dmsModel, "relatedId": 0}}, false)
	if err != nil || len(rows) != 1 {
		return
	}
	_, _, _ = c.call(ctx, http.MethodPost, restPath+"/removeAll", map[string]any{"records": []any{
		map[string]any{"id": num(rows[0]["id"]), "version": num(rows[0]["version"])}}}, false)
}

// versionRows lists the version records of a document, oldest first.
func (c *Client) versionRows(ctx context.Context, doc remote.ID) ([]row, error) {
	nid, err := numID(doc)
	if err != nil {
		return nil, err
	}
	return c.search(ctx, "self.relatedModel = '"+dmsModel+"' AND self.relatedId = :x AND COALESCE(self.isDirectory, FALSE) = FALSE",
		map[string]any{"x": nid}, []string{"id"})
}

func (c *Client) Versions(ctx context.Context, doc remote.ID) ([]remote.Version, error) {
	cur, err := c.Stat(ctx, doc)
	if err != nil {
		return nil, err
	}
	if cur.Kind != remote.KindDocument {
		return nil, fmt.Errorf("axelor: %s: %w", doc, remote.ErrIsFolder)
	}
	rows, err := c.versionRows(ctx, doc)
	if err != nil {
		return nil, err
	}
	var out []remote.Version
	for i, row := range rows {
		n, err := c.node(row)
		if err != nil {
			return nil, err
		}
		f := n.Files[0]
		f.Name = cur.Files[0].Name // the record's name carries a time stamp; the file is the document's
		out = append(out, remote.Version{N: i + 1, Time: f.ModTime, Files: []remote.File{f}})
	}
	out = append(out, remote.Version{N: len(rows) + 1, Time: cur.Files[0].ModTime, Files: cur.Files})
	return out, nil
}

func (c *Client) OpenVersion(ctx context.Context, doc remote.ID, n int, file string, off, length int64) (io.ReadCloser, error) {
	rows, err := c.versionRows(ctx, doc)
	if err != nil {
		return nil, err
	}
	switch {
	case n == len(rows)+1:
		return c.Open(ctx, doc, file, off, length)
	case n < 1 || n > len(rows):
		return nil, fmt.Errorf("axelor: document %s has no version %d: %w", doc, n, remote.ErrNotFound)
	}
	v, err := c.node(rows[n-1])
	if err != nil {
		return nil, err
	}
	return c.download(ctx, v.ID, v.Files[0].Size, off, length)
}

// uploaded describes a new MetaFile.
type uploaded struct {
	id      int64
	version int
	size    int64
	created time.Time
}

// upload sends content in chunks to /ws/files/upload and returns the new
// MetaFile. A failed upload is aborted and started again with a new id (the
// protocol cannot resume).
func (c *Client) upload(ctx context.Context, name string, content remote.Content) (uploaded, error) {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var m uploaded
		if m, err = c.uploadOnce(ctx, name, content); err == nil {
			return m, nil
		}
		if ctx.Err() != nil || errors.Is(err, remote.ErrInvalidName) || errors.Is(err, remote.ErrPermission) {
			break
		}
		c.log.Warn("axelor: upload failed, starting again", "file", name, "attempt", attempt+1, "err", err)
		c.sleep(ctx, attempt, "")
	}
	return uploaded{}, err
}

func (c *Client) uploadOnce(ctx context.Context, name string, content remote.Content) (uploaded, error) {
	id := newUUID()
	abort := func() {
		if resp, err := c.send(context.WithoutCancel(ctx), http.MethodDelete, "/ws/files/upload/"+id, "", nil, nil, false); err == nil {
			resp.Body.Close()
		}
	}
	buf := make([]byte, min(int64(c.chunk), max(content.Size, 1)))
	for off := int64(0); ; {
		n := min(int64(len(buf)), content.Size-off)
		if _, err := content.ReadAt(buf[:n], off); err != nil && !(errors.Is(err, io.EOF) && n == 0) {
			abort()
			return uploaded{}, fmt.Errorf("axelor: read %q for upload: %w", name, err)
		}
		hdr := http.Header{
			"X-File-Id":     {id},
			"X-File-Name":   {url.QueryEscape(name)},
			"X-File-Size":   {strconv.FormatInt(content.Size, 10)},
			"X-File-Offset": {strconv.FormatInt(off, 10)},
		}
		resp, err := c.send(ctx, http.MethodPost, "/ws/files/upload", "application/octet-stream", buf[:n], hdr, false)
		if err != nil {
			abort()
			return uploaded{}, err
		}
		raw, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if rerr != nil || resp.StatusCode != http.StatusOK {
			abort()
			if rerr != nil {
				return uploaded{}, fmt.Errorf("axelor: upload %q: %w: %v", name, remote.ErrUnavailable, rerr)
			}
			return uploaded{}, fmt.Errorf("axelor: upload %q at %d: HTTP %d: %s: %w", name, off, resp.StatusCode, uploadMessage(raw), httpErr(resp.StatusCode))
		}
		off += n
		if off >= content.Size {
			var meta struct {
				ID        json.Number `json:"id"`
				Version   int         `json:"version"`
				FileSize  int64       `json:"fileSize"`
				CreatedOn string      `json:"createdOn"`
			}
			if err := json.Unmarshal(raw, &meta); err != nil || meta.ID == "" {
				return uploaded{}, fmt.Errorf("axelor: upload %q: the last chunk's answer has no MetaFile: %w", name, remote.ErrProtocol)
			}
			if meta.FileSize != content.Size {
				return uploaded{}, fmt.Errorf("axelor: upload %q: the server stored %d of %d bytes: %w", name, meta.FileSize, content.Size, remote.ErrUnavailable)
			}
			mid, _ := meta.ID.Int64()
			return uploaded{id: mid, version: meta.Version, size: meta.FileSize, created: parseTime(meta.CreatedOn)}, nil
		}
	}
}

// uploadMessage reads {"error":{"message":…}} or the older {"error":"…"}.
// Upstream answers a request missing an X-File-* header with an empty
// 400 (issue 13, item 7).
func uploadMessage(raw []byte) string {
	if len(bytes.TrimSpace(raw)) == 0 {
		return "no reason given (the server answers so when an X-File-Name, X-File-Size or X-File-Offset header is missing; a proxy may drop them)"
	}
	var v struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(raw, &v) == nil && len(v.Error) > 0 {
		var m struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(v.Error, &m) == nil && m.Message != "" {
			return m.Message
		}
		var s string
		if json.Unmarshal(v.Error, &s) == nil {
			return s
		}
	}
	return snippet(raw)
}

func newUUID() string {
	var b [16]byte
	crand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
