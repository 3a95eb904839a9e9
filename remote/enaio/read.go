package enaio

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/enaio/dmsxml"
	"github.com/dmsfs/dmsfs/remote/enaio/rpc"
)

// enaio has no ranged reads: std.StoreInCacheByID sends all of a document's
// files. They are kept on disk per (document, concurrency timestamp) so
// that the filesystem's block reads do not fetch a document again and
// again; versions are kept per version GUID.

type cachedFile struct {
	path string
	ext  string
	size int64
	sha  string // hex SHA-256
}

type fileCache struct {
	dir     string
	limit   int64
	flights singleflight.Group

	mu      sync.Mutex // guards entries, used
	entries map[string]*cacheEntry
	used    int64
}

type cacheEntry struct {
	files   []cachedFile
	size    int64
	lastUse time.Time
}

func newFileCache(dir string, limit int64) (*fileCache, error) {
	dir = filepath.Join(dir, "enaio-documents")
	if err := os.RemoveAll(dir); err != nil { // nothing survives a remount: timestamps may repeat across servers
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &fileCache{dir: dir, limit: limit, entries: map[string]*cacheEntry{}}, nil
}

func (c *fileCache) get(key string) ([]cachedFile, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	e.lastUse = time.Now()
	return e.files, true
}

// put stores an entry and evicts the least recently used ones beyond the
// limit. Readers that have a file open keep reading it after eviction.
func (c *fileCache) put(key string, files []cachedFile) {
	var size int64
	for _, f := range files {
		size += f.size
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.entries[key]; ok {
		c.used -= old.size
		removeFiles(old.files)
	}
	c.entries[key] = &cacheEntry{files: files, size: size, lastUse: time.Now()}
	c.used += size
	for c.used > c.limit && len(c.entries) > 1 {
		var oldest string
		for k, e := range c.entries {
			if k != key && (oldest == "" || e.lastUse.Before(c.entries[oldest].lastUse)) {
				oldest = k
			}
		}
		c.used -= c.entries[oldest].size
		removeFiles(c.entries[oldest].files)
		delete(c.entries, oldest)
	}
}

func (c *fileCache) drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok {
		c.used -= e.size
		removeFiles(e.files)
		delete(c.entries, key)
	}
}

func removeFiles(fs []cachedFile) {
	for _, f := range fs {
		os.Remove(f.path)
	}
}

// hashingFile writes a stream to disk while hashing it.
type hashingFile struct {
	f *os.File
	h hash.Hash
	n int64
}

func (w *hashingFile) Write(p []byte) (int, error) {
	w.h.Write(p)
	n, err := w.f.Write(p)
	w.n += int64(n)
	return n, err
}

// download runs a job whose answer streams are files and keeps them under
// key. The job is repeated on a broken connection or a corrupted answer;
// each try starts over.
func (r *Repo) download(ctx context.Context, key string, req rpc.Request) ([]cachedFile, error) {
	if fs, ok := r.cache.get(key); ok {
		return fs, nil
	}
	v, err, _ := r.cache.flights.Do(key, func() (any, error) {
		if fs, ok := r.cache.get(key); ok {
			return fs, nil
		}
		var ws []*hashingFile
		var exts []string
		cleanup := func() {
			for _, w := range ws {
				w.f.Close()
				os.Remove(w.f.Name())
			}
			ws, exts = nil, nil
		}
		sink := func(i int, ext string, size int64) (io.Writer, error) {
			if i == 0 {
				cleanup() // a new try
			}
			f, err := os.CreateTemp(r.cache.dir, "doc-*")
			if err != nil {
				return nil, fmt.Errorf("cache: %w", err)
			}
			w := &hashingFile{f: f, h: sha256.New()}
			ws, exts = append(ws, w), append(exts, ext)
			return w, nil
		}
		rep, err := r.rpc.Call(ctx, req, sink, true)
		if err != nil {
			cleanup()
			return nil, err
		}
		if len(ws) != rep.Streams {
			cleanup()
			return nil, fmt.Errorf("%w: %d files announced, %d received", remote.ErrProtocol, rep.Streams, len(ws))
		}
		var fs []cachedFile
		for i, w := range ws {
			if err := w.f.Close(); err != nil {
				cleanup()
				return nil, fmt.Errorf("cache: %w", err)
			}
			fs = append(fs, cachedFile{path: w.f.Name(), ext: exts[i], size: w.n, sha: hex.EncodeToString(w.h.Sum(nil))})
		}
		r.cache.put(key, fs)
		return fs, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]cachedFile), nil
}

// fetch returns a document's files as of its concurrency timestamp token.
func (r *Repo) fetch(ctx context.Context, id int, token string) ([]cachedFile, error) {
	fs, err := r.download(ctx, "d:"+strconv.Itoa(id)+":"+token, storeInCacheRequest(id))
	var f *rpc.Failure
	if errors.As(err, &f) {
		return nil, fmt.Errorf("%w: document %d: %s", remote.ErrNotFound, id, f.Reply.Message())
	}
	return fs, unavailable(err)
}

// current fetches a document's files and checks them against the digests
// the files table records; a document changed in between is looked up
// again. A mismatch that stays is an error, never wrong bytes.
func (r *Repo) current(ctx context.Context, o object) (object, []cachedFile, error) {
	for try := 0; ; try++ {
		fs, err := r.fetch(ctx, o.id, o.Token)
		if err != nil {
			return o, nil, err
		}
		if !o.table || sameContent(o.Files, fs) {
			return o, fs, nil
		}
		r.cache.drop("d:" + strconv.Itoa(o.id) + ":" + o.Token)
		if try == 2 {
			return o, nil, fmt.Errorf("%w: document %d: the files enaio sent do not match the SHA-256 digests in its %s table", remote.ErrProtocol, o.id, r.cfg.FilesTable)
		}
		if o, err = r.obj(ctx, o.id); err != nil {
			return o, nil, err
		}
	}
}

func sameContent(want []remote.File, got []cachedFile) bool {
	if len(want) != len(got) {
		return false
	}
	for i := range want {
		if want[i].SHA256 != got[i].sha || want[i].Size != got[i].size {
			return false
		}
	}
	return true
}

// index finds a file of a document by name.
func index(o object, file string) (int, error) {
	if o.Kind != remote.KindDocument {
		return 0, fmt.Errorf("%w: %s", remote.ErrIsFolder, o.Name)
	}
	for i, f := range o.Files {
		if f.Name == file {
			return i, nil
		}
	}
	return 0, fmt.Errorf("%w: %s has no file %q", remote.ErrNotFound, o.Name, file)
}

// Open reads part of a document's file from the fetched copy.
func (r *Repo) Open(ctx context.Context, doc remote.ID, file string, off, length int64) (io.ReadCloser, error) {
	o, err := r.object(ctx, doc)
	if err != nil {
		return nil, err
	}
	i, err := index(o, file)
	if err != nil {
		return nil, err
	}
	for try := 0; ; try++ {
		_, fs, err := r.current(ctx, o)
		if err != nil {
			return nil, err
		}
		rc, err := openPart(fs[i].path, off, length)
		if errors.Is(err, os.ErrNotExist) && try == 0 {
			continue // evicted between lookup and open
		}
		return rc, err
	}
}

func openPart(path string, off, length int64) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	if length < 0 {
		return f, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(f, length), f}, nil
}

// object returns the object behind a document or folder ID.
func (r *Repo) object(ctx context.Context, id remote.ID) (object, error) {
	kind, _, n, err := parseID(id)
	if err != nil {
		return object{}, err
	}
	if kind != "object" {
		return object{}, fmt.Errorf("%w: %s is a cabinet", remote.ErrIsFolder, id)
	}
	return r.obj(ctx, n)
}

// versionRef is a version-created history entry.
type versionRef struct {
	n    int
	guid string
	time time.Time
}

// history lists a document's saved versions, oldest first.
func (r *Repo) history(ctx context.Context, o object) ([]versionRef, error) {
	rep, err := r.rpc.Call(ctx, rpc.Request{Job: jobGetObjectHistory, Params: []rpc.Param{
		rpc.Int("Flags", 0), rpc.Int("ObjectID", o.id), rpc.Str("Encoding", "UTF-8")}}, nil, true)
	if err != nil {
		return nil, unavailable(err)
	}
	var h dmsxml.History
	if err := decodeXML(rep, "History", &h); err != nil {
		return nil, err
	}
	var refs []versionRef
	// Newest first on the wire.
	for i := len(h.Modifications) - 1; i >= 0; i-- {
		m := h.Modifications[i]
		if m.Action.ID != dmsxml.ActionVersionCreated || m.GUID == "" {
			continue
		}
		t, _ := time.ParseInLocation("02.01.2006 15:04:05", strings.TrimSpace(m.Time), time.UTC)
		refs = append(refs, versionRef{n: len(refs) + 1, guid: m.GUID, time: t})
	}
	sort.SliceStable(refs, func(i, j int) bool { return refs[i].n < refs[j].n })
	return refs, nil
}

// versionFiles fetches a saved version (see docVersionRequest).
func (r *Repo) versionFiles(ctx context.Context, o object, v versionRef) ([]remote.File, []cachedFile, error) {
	fs, err := r.download(ctx, "v:"+v.guid, docVersionRequest(o.id, v.guid))
	var f *rpc.Failure
	if errors.As(err, &f) {
		return nil, nil, fmt.Errorf("%w: version %d of document %d: %s", remote.ErrNotFound, v.n, o.id, f.Reply.Message())
	}
	if err != nil {
		return nil, nil, unavailable(err)
	}
	// Old versions carry no names either: a file keeps the current name at
	// its position when the extension agrees.
	named := foreignNames(o.Name, v.time, fs)
	for i := range named {
		if i < len(o.Files) && strings.EqualFold(strings.TrimPrefix(filepathExt(o.Files[i].Name), "."), fs[i].ext) {
			named[i].Name = o.Files[i].Name
		}
	}
	return named, fs, nil
}

func filepathExt(name string) string { return filepath.Ext(name) }

// Versions lists a document's saved versions and, last, its current state.
func (r *Repo) Versions(ctx context.Context, doc remote.ID) ([]remote.Version, error) {
	o, err := r.object(ctx, doc)
	if err != nil {
		return nil, err
	}
	if o.Kind != remote.KindDocument {
		return nil, fmt.Errorf("%w: %s", remote.ErrIsFolder, o.Name)
	}
	refs, err := r.history(ctx, o)
	if err != nil {
		return nil, err
	}
	// A "version created" entry is written when a save archives the files
	// it replaces: its time is when that version stopped being current.
	// A version's time is when it was saved: the document's creation for
	// the first, the archiving of the one before for the others.
	var out []remote.Version
	since := o.created
	for _, v := range refs {
		files, _, err := r.versionFiles(ctx, o, v)
		if err != nil {
			return nil, err
		}
		out = append(out, remote.Version{N: v.n, Time: since, Files: files})
		since = v.time
	}
	return append(out, remote.Version{N: len(refs) + 1, Time: since, Files: o.Files}), nil
}

// OpenVersion reads a file of version n.
func (r *Repo) OpenVersion(ctx context.Context, doc remote.ID, n int, file string, off, length int64) (io.ReadCloser, error) {
	o, err := r.object(ctx, doc)
	if err != nil {
		return nil, err
	}
	refs, err := r.history(ctx, o)
	if err != nil {
		return nil, err
	}
	if n == len(refs)+1 {
		return r.Open(ctx, doc, file, off, length)
	}
	if n < 1 || n > len(refs) {
		return nil, fmt.Errorf("%w: version %d of %s", remote.ErrNotFound, n, o.Name)
	}
	files, fs, err := r.versionFiles(ctx, o, refs[n-1])
	if err != nil {
		return nil, err
	}
	for i, f := range files {
		if f.Name == file {
			return openPart(fs[i].path, off, length)
		}
	}
	return nil, fmt.Errorf("%w: version %d of %s has no file %q", remote.ErrNotFound, n, o.Name, file)
}
