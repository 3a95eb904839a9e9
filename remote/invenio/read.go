package invenio

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dmsfs/dmsfs/remote"
)

// Open reads a file of the working copy.
func (r *Repo) Open(ctx context.Context, doc remote.ID, file string, off, length int64) (io.ReadCloser, error) {
	f, err := r.file(doc)
	if err != nil {
		return nil, err
	}
	_, files, err := r.cachedFiles(ctx, f.parent)
	if err != nil {
		return nil, err
	}
	e, ok := files[f.key]
	if !ok || lastName(f.key) != file {
		return nil, fmt.Errorf("%s: %w", file, remote.ErrNotFound)
	}
	return r.read(ctx, e, off, length)
}

// read returns length bytes (all when < 0) of a file from off: a ranged GET
// where the server honours Range, else from a whole download kept on disk.
func (r *Repo) read(ctx context.Context, e fileEntry, off, length int64) (io.ReadCloser, error) {
	if e.Links.Content == "" {
		return nil, fmt.Errorf("%s has no content link (status %q): %w", e.Key, e.Status, remote.ErrPermission)
	}
	if off >= e.Size {
		return io.NopCloser(strings.NewReader("")), nil
	}
	if length < 0 || off+length > e.Size {
		length = e.Size - off
	}
	whole := off == 0 && length == e.Size
	r.mu.Lock()
	noRange := r.noRange
	r.mu.Unlock()
	if noRange && !whole {
		return r.whole.section(ctx, e, off, length, r.download)
	}
	hdr := http.Header{}
	if !whole {
		hdr.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+length-1))
	}
	resp, err := r.get(ctx, e.Links.Content, hdr)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", e.Key, err)
	}
	switch {
	case resp.StatusCode == http.StatusPartialContent && !whole:
		if start, ok := rangeStart(resp.Header.Get("Content-Range")); !ok || start != off {
			resp.Body.Close()
			return nil, fmt.Errorf("read %s: Content-Range %q for offset %d: %w", e.Key, resp.Header.Get("Content-Range"), off, remote.ErrProtocol)
		}
		return limited(resp.Body, length), nil
	case resp.StatusCode == http.StatusOK && whole:
		return limited(resp.Body, length), nil
	case resp.StatusCode == http.StatusOK:
		// The server ignores Range (InvenioRDM's default): from now on whole
		// files are downloaded once and kept on disk.
		r.mu.Lock()
		r.noRange = true
		r.mu.Unlock()
		r.log.Info("invenio: the server does not serve ranges; reading whole files", "key", e.Key)
		resp.Body.Close()
		return r.whole.section(ctx, e, off, length, r.download)
	}
	defer resp.Body.Close()
	return nil, fmt.Errorf("read %s: %w", e.Key, errorFrom(resp))
}

type limitedBody struct {
	io.Reader
	io.Closer
}

func limited(rc io.ReadCloser, n int64) io.ReadCloser { return limitedBody{io.LimitReader(rc, n), rc} }

func rangeStart(cr string) (int64, bool) {
	rest, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return 0, false
	}
	start, _, ok := strings.Cut(rest, "-")
	n, err := strconv.ParseInt(start, 10, 64)
	return n, ok && err == nil
}

// get GETs a content link, following redirects by hand: the token goes only
// to the repository's host, never to the storage a 302 points to, and an
// expired signed URL (403 from the storage) is asked for again.
func (r *Repo) get(ctx context.Context, link string, hdr http.Header) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		u := link
		var resp *http.Response
		for hops := 0; ; hops++ {
			var err error
			resp, err = r.do(ctx, http.MethodGet, u, nil, hdr)
			if err != nil {
				return nil, err
			}
			if resp.StatusCode < 300 || resp.StatusCode > 399 || resp.StatusCode == http.StatusNotModified {
				break
			}
			loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
			resp.Body.Close()
			if err != nil || hops == 5 {
				return nil, fmt.Errorf("redirect from %s: %w", redact(resp.Request.URL), remote.ErrProtocol)
			}
			u = loc.String()
		}
		if resp.StatusCode == http.StatusForbidden && !r.sameOrigin(resp.Request.URL) && attempt < 2 {
			resp.Body.Close()
			r.log.Debug("invenio: storage URL refused (expired?); asking for a new one", "url", redact(resp.Request.URL))
			continue
		}
		return resp, nil
	}
}

// download writes a whole file to w and checks its md5.
func (r *Repo) download(ctx context.Context, e fileEntry, w io.Writer) error {
	resp, err := r.get(ctx, e.Links.Content, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errorFrom(resp)
	}
	h := md5.New()
	n, err := io.Copy(io.MultiWriter(w, h), resp.Body)
	if err != nil {
		return fmt.Errorf("download %s: %w: %w", e.Key, remote.ErrUnavailable, err)
	}
	if n != e.Size {
		return fmt.Errorf("download %s: %d bytes, expected %d: %w", e.Key, n, e.Size, remote.ErrProtocol)
	}
	if want, ok := strings.CutPrefix(r.checksum(e.Checksum), "md5:"); ok && want != hex.EncodeToString(h.Sum(nil)) {
		return fmt.Errorf("download %s: md5 mismatch: %w", e.Key, remote.ErrProtocol)
	}
	return nil
}

// wholeFiles keeps whole downloads on disk, for servers that ignore Range
// (keyed by checksum) and for renditions (renditions.go), the newest few
// up to a byte budget.
type wholeFiles struct {
	dir    string
	budget int64

	mu    sync.Mutex // guards files, used, seq
	files map[string]*wholeFile
	used  int64
	seq   int64
}

type wholeFile struct {
	path  string
	size  int64
	ready chan struct{}
	err   error
	last  int64
}

func newWholeFiles(dir string) *wholeFiles {
	if dir == "" {
		dir = os.TempDir()
	}
	return &wholeFiles{dir: dir, budget: 4 << 30, files: map[string]*wholeFile{}}
}

func (w *wholeFiles) section(ctx context.Context, e fileEntry, off, length int64, fetch func(context.Context, fileEntry, io.Writer) error) (io.ReadCloser, error) {
	wf, err := w.get(ctx, e.Checksum+"/"+e.Links.Content, e.Size, func(ctx context.Context, out io.Writer) error {
		return fetch(ctx, e, out)
	})
	if err != nil {
		return nil, err
	}
	f, err := os.Open(wf.path)
	if err != nil {
		return nil, err
	}
	return limitedBody{io.NewSectionReader(f, off, length), f}, nil
}

// get is the kept file of key, fetched by fill if it is not kept (once,
// for concurrent callers). size is its length where known before (room
// is made for it first), else -1.
func (w *wholeFiles) get(ctx context.Context, key string, size int64, fill func(context.Context, io.Writer) error) (*wholeFile, error) {
	w.mu.Lock()
	wf := w.files[key]
	if wf == nil {
		wf = &wholeFile{size: max(size, 0), ready: make(chan struct{})}
		w.files[key] = wf
		w.used += wf.size
		w.evict()
		w.mu.Unlock()
		n, err := w.fill(ctx, wf, fill)
		w.mu.Lock()
		wf.err = err
		if err != nil {
			delete(w.files, key)
			w.used -= wf.size
		} else if size < 0 {
			wf.size = n
			w.used += n
			w.evict()
		}
		w.mu.Unlock()
		close(wf.ready)
	} else {
		w.mu.Unlock()
	}
	select {
	case <-wf.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if wf.err != nil {
		return nil, wf.err
	}
	w.mu.Lock()
	w.seq++
	wf.last = w.seq
	w.mu.Unlock()
	return wf, nil
}

// fill fetches into a new file and returns its length.
func (w *wholeFiles) fill(ctx context.Context, wf *wholeFile, fill func(context.Context, io.Writer) error) (int64, error) {
	dir := filepath.Join(w.dir, "invenio-downloads")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, err
	}
	f, err := os.CreateTemp(dir, "whole-*")
	if err != nil {
		return 0, err
	}
	wf.path = f.Name()
	err = fill(ctx, f)
	var n int64
	if err == nil {
		n, err = f.Seek(0, io.SeekCurrent)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(wf.path)
	}
	return n, err
}

// evict drops the least recently used finished downloads over the budget.
// Open readers keep their file (unlinked files stay readable). Under w.mu.
func (w *wholeFiles) evict() {
	if w.used <= w.budget {
		return
	}
	var done []string
	for k, wf := range w.files {
		select {
		case <-wf.ready:
			done = append(done, k)
		default:
		}
	}
	sort.Slice(done, func(i, j int) bool { return w.files[done[i]].last < w.files[done[j]].last })
	for _, k := range done {
		if w.used <= w.budget {
			break
		}
		wf := w.files[k]
		os.Remove(wf.path)
		w.used -= wf.size
		delete(w.files, k)
	}
}

func (w *wholeFiles) close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, wf := range w.files {
		select {
		case <-wf.ready:
			os.Remove(wf.path)
			delete(w.files, k)
		default:
		}
	}
	return nil
}

// Versions lists a file's history: the published versions of its record
// that hold the key (one entry per distinct content), then the working
// copy's state if it differs.
func (r *Repo) Versions(ctx context.Context, doc remote.ID) ([]remote.Version, error) {
	f, err := r.file(doc)
	if err != nil {
		return nil, err
	}
	rec, files, err := r.cachedFiles(ctx, f.parent)
	if err != nil {
		return nil, err
	}
	cur, ok := files[f.key]
	if !ok {
		return nil, fmt.Errorf("%s: %w", f.key, remote.ErrNotFound)
	}
	hist, err := r.published(ctx, rec)
	if err != nil {
		return nil, err
	}
	var out []remote.Version
	last := ""
	for _, v := range hist {
		e, ok := v.files[f.key]
		if !ok || r.checksum(e.Checksum) == last {
			continue
		}
		last = r.checksum(e.Checksum)
		out = append(out, version(v.index, parseTime(v.rec.Updated), e))
	}
	if r.checksum(cur.Checksum) != last || len(out) == 0 {
		out = append(out, version(rec.Versions.Index, parseTime(cur.Updated), cur))
	}
	return out, nil
}

func version(n int, t time.Time, e fileEntry) remote.Version {
	return remote.Version{N: n, Time: t, Files: []remote.File{{Name: lastName(e.Key), Size: e.Size, ModTime: t, ContentID: e.Checksum}}}
}

type publishedVersion struct {
	index int
	rec   record
	files map[string]fileEntry
}

// published lists a record's published versions, oldest first, with their
// files. A published version never changes, so its file list is asked for
// once.
func (r *Repo) published(ctx context.Context, rec *record) ([]publishedVersion, error) {
	if rec.Links.Versions == "" {
		return nil, nil
	}
	var recs []record
	next := rec.Links.Versions + "?" + url.Values{"size": {"100"}, "sort": {"version"}}.Encode()
	for page := 0; next != "" && page < 100; page++ {
		var res searchResult
		if err := r.getJSON(ctx, next, &res); err != nil {
			return nil, fmt.Errorf("versions of %s: %w", rec.Parent.ID, err)
		}
		if len(res.Hits.Hits) == 0 {
			break
		}
		recs = append(recs, res.Hits.Hits...)
		next = res.Links.Next
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Versions.Index < recs[j].Versions.Index })
	var out []publishedVersion
	for i := range recs {
		v := &recs[i]
		r.mu.Lock()
		entries, ok := r.history[v.ID]
		r.mu.Unlock()
		if !ok {
			var fl fileList
			if err := r.getJSON(ctx, v.Links.Files, &fl); err != nil {
				return nil, fmt.Errorf("files of version %d of %s: %w", v.Versions.Index, rec.Parent.ID, err)
			}
			entries = fl.Entries
			r.mu.Lock()
			r.history[v.ID] = entries
			r.mu.Unlock()
		}
		files := map[string]fileEntry{}
		for _, e := range entries {
			files[e.Key] = e
		}
		out = append(out, publishedVersion{index: v.Versions.Index, rec: *v, files: files})
	}
	return out, nil
}

// OpenVersion reads a file as it was in version n.
func (r *Repo) OpenVersion(ctx context.Context, doc remote.ID, n int, file string, off, length int64) (io.ReadCloser, error) {
	f, err := r.file(doc)
	if err != nil {
		return nil, err
	}
	rec, files, err := r.cachedFiles(ctx, f.parent)
	if err != nil {
		return nil, err
	}
	if rec.Versions.Index == n {
		if e, ok := files[f.key]; ok && lastName(e.Key) == file {
			return r.read(ctx, e, off, length)
		}
	}
	hist, err := r.published(ctx, rec)
	if err != nil {
		return nil, err
	}
	for _, v := range hist {
		if e, ok := v.files[f.key]; ok && v.index == n && lastName(e.Key) == file {
			return r.read(ctx, e, off, length)
		}
	}
	return nil, fmt.Errorf("version %d of %s: %w", n, file, remote.ErrNotFound)
}
