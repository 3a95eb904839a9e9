// Package embedded is the built-in repository: folders, documents with one or
// more files and a version history per document, persistent on local disk.
//
// Metadata lives in a bbolt database (meta.db), one JSON record per node;
// file contents are content-addressed blobs (blobs/ab/abcdef…, named by
// SHA-256), written to a temporary file, fsync'd and renamed into place, so a
// crash never leaves a half-written blob under a valid name. A metadata
// transaction only refers to blobs that are already durable.
package embedded

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/dmsfs/dmsfs/remote"
)

var (
	bucketNodes    = []byte("nodes")
	bucketChildren = []byte("children")
)

const rootID = remote.ID("1")

// record is a node as stored. Rev counts every change and is the
// concurrency token; Versions holds the document's history, current last.
type record struct {
	ID       remote.ID        `json:"id"`
	Parent   remote.ID        `json:"parent"`
	Kind     remote.Kind      `json:"kind"`
	Name     string           `json:"name"`
	Rev      int              `json:"rev"`
	ModTime  time.Time        `json:"mtime"`
	Versions []remote.Version `json:"versions,omitempty"`
	// Fields are the node's metadata, any names.
	Fields map[string]string `json:"fields,omitempty"`
}

func (r *record) node() remote.Node {
	n := remote.Node{ID: r.ID, Parent: r.Parent, Kind: r.Kind, Name: r.Name,
		Token: strconv.Itoa(r.Rev), ModTime: r.ModTime}
	if len(r.Versions) > 0 {
		n.Files = append([]remote.File(nil), r.Versions[len(r.Versions)-1].Files...)
	}
	if len(r.Fields) > 0 {
		n.Fields = make(map[string]string, len(r.Fields))
		for k, v := range r.Fields {
			n.Fields[k] = v
		}
	}
	return n
}

func (r *record) files() []remote.File {
	if len(r.Versions) == 0 {
		return nil
	}
	return append([]remote.File(nil), r.Versions[len(r.Versions)-1].Files...)
}

// Repo is the embedded repository. It is safe for concurrent use.
type Repo struct {
	dir      string
	db       *bolt.DB
	readOnly bool
	now      func() time.Time
	feed     feed
}

var (
	_ remote.Repository = (*Repo)(nil)
	_ remote.Fields     = (*Repo)(nil)
	_ remote.Changes    = (*Repo)(nil)
)

// Options configure Open.
type Options struct {
	ReadOnly bool
	// Now is the clock; time.Now when nil. Tests inject one.
	Now func() time.Time
}

// Open opens (creating if needed) the repository in dir.
func Open(dir string, opts Options) (*Repo, error) {
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("embedded repository: %w", err)
	}
	db, err := bolt.Open(filepath.Join(dir, "meta.db"), 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("embedded repository %s is in use by another process", dir)
		}
		return nil, fmt.Errorf("embedded repository %s: %w", dir, err)
	}
	r := &Repo{dir: dir, db: db, readOnly: opts.ReadOnly, now: opts.Now}
	if r.now == nil {
		r.now = time.Now
	}
	err = db.Update(func(tx *bolt.Tx) error {
		nodes, err := tx.CreateBucketIfNotExists(bucketNodes)
		if err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(bucketChildren); err != nil {
			return err
		}
		if nodes.Get([]byte(rootID)) != nil {
			return nil
		}
		if _, err := nodes.NextSequence(); err != nil { // the root takes 1
			return err
		}
		return put(tx, &record{ID: rootID, Kind: remote.KindFolder, Rev: 1, ModTime: r.now().UTC()})
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("embedded repository %s: %w", dir, err)
	}
	// Blobs left in tmp by a crash were never referenced.
	tmps, _ := filepath.Glob(filepath.Join(dir, "blobs", "tmp", "*"))
	for _, t := range tmps {
		os.Remove(t)
	}
	return r, nil
}

// Close releases the database.
func (r *Repo) Close() error { return r.db.Close() }

// Dir is where the repository keeps its data.
func (r *Repo) Dir() string { return r.dir }

func (r *Repo) Capabilities() remote.Capabilities {
	return remote.Capabilities{Versions: true, MultiFile: true, Ranges: true, ReadOnly: r.readOnly, ListsFields: true}
}

func (r *Repo) Root(ctx context.Context) (remote.Node, error) { return r.Stat(ctx, rootID) }

func (r *Repo) Stat(ctx context.Context, id remote.ID) (remote.Node, error) {
	var n remote.Node
	err := r.db.View(func(tx *bolt.Tx) error {
		rec, err := get(tx, id)
		if err != nil {
			return err
		}
		n = rec.node()
		return nil
	})
	return n, err
}

func (r *Repo) List(ctx context.Context, folder remote.ID) ([]remote.Node, error) {
	var out []remote.Node
	err := r.db.View(func(tx *bolt.Tx) error {
		rec, err := get(tx, folder)
		if err != nil {
			return err
		}
		if rec.Kind != remote.KindFolder {
			return fmt.Errorf("list %s: %w", folder, remote.ErrNotFolder)
		}
		return eachChild(tx, folder, func(c *record) error {
			out = append(out, c.node())
			return nil
		})
	})
	return out, err
}

// eachChild calls fn with every child of folder, in no particular order.
func eachChild(tx *bolt.Tx, folder remote.ID, fn func(*record) error) error {
	kids := tx.Bucket(bucketChildren).Bucket([]byte(folder))
	if kids == nil {
		return nil
	}
	return kids.ForEach(func(k, _ []byte) error {
		c, err := get(tx, remote.ID(k))
		if err != nil {
			return err
		}
		return fn(c)
	})
}

func (r *Repo) Open(ctx context.Context, doc remote.ID, file string, off, length int64) (io.ReadCloser, error) {
	var f remote.File
	err := r.db.View(func(tx *bolt.Tx) error {
		rec, err := getDoc(tx, doc)
		if err != nil {
			return err
		}
		var ok bool
		if f, ok = rec.node().File(file); !ok {
			return fmt.Errorf("document %s has no file %q: %w", doc, file, remote.ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return r.openBlob(f, off, length)
}

func (r *Repo) OpenVersion(ctx context.Context, doc remote.ID, n int, file string, off, length int64) (io.ReadCloser, error) {
	var f remote.File
	err := r.db.View(func(tx *bolt.Tx) error {
		rec, err := getDoc(tx, doc)
		if err != nil {
			return err
		}
		for _, v := range rec.Versions {
			if v.N != n {
				continue
			}
			for _, vf := range v.Files {
				if vf.Name == file {
					f = vf
					return nil
				}
			}
		}
		return fmt.Errorf("document %s version %d file %q: %w", doc, n, file, remote.ErrNotFound)
	})
	if err != nil {
		return nil, err
	}
	return r.openBlob(f, off, length)
}

func (r *Repo) Versions(ctx context.Context, doc remote.ID) ([]remote.Version, error) {
	var out []remote.Version
	err := r.db.View(func(tx *bolt.Tx) error {
		rec, err := getDoc(tx, doc)
		if err != nil {
			return err
		}
		out = append(out, rec.Versions...)
		return nil
	})
	return out, err
}

func (r *Repo) Mkdir(ctx context.Context, parent remote.ID, name string) (remote.Node, error) {
	if err := r.writable(name); err != nil {
		return remote.Node{}, err
	}
	var n remote.Node
	err := r.db.Update(func(tx *bolt.Tx) error {
		rec := &record{Kind: remote.KindFolder, Name: name, Rev: 1, ModTime: r.now().UTC()}
		if err := r.create(tx, parent, rec); err != nil {
			return err
		}
		n = rec.node()
		return nil
	})
	return n, err
}

func (r *Repo) Insert(ctx context.Context, parent remote.ID, name string, c remote.Content) (remote.Node, error) {
	if err := r.writable(name); err != nil {
		return remote.Node{}, err
	}
	f, err := r.storeBlob(name, c)
	if err != nil {
		return remote.Node{}, err
	}
	var n remote.Node
	err = r.db.Update(func(tx *bolt.Tx) error {
		now := r.now().UTC()
		rec := &record{Kind: remote.KindDocument, Name: name, Rev: 1, ModTime: now,
			Versions: []remote.Version{{N: 1, Time: now, Files: []remote.File{f}}}}
		if err := r.create(tx, parent, rec); err != nil {
			return err
		}
		n = rec.node()
		return nil
	})
	return n, err
}

func (r *Repo) Replace(ctx context.Context, doc remote.ID, token, file string, c remote.Content) (remote.Node, error) {
	return r.withContent(doc, token, file, c, func(files []remote.File, f remote.File) ([]remote.File, error) {
		for i := range files {
			if files[i].Name == file {
				files[i] = f
				return files, nil
			}
		}
		return nil, fmt.Errorf("document %s has no file %q: %w", doc, file, remote.ErrNotFound)
	})
}

func (r *Repo) Append(ctx context.Context, doc remote.ID, token, file string, c remote.Content) (remote.Node, error) {
	return r.withContent(doc, token, file, c, func(files []remote.File, f remote.File) ([]remote.File, error) {
		for _, old := range files {
			if old.Name == file {
				return nil, fmt.Errorf("document %s already has a file %q: %w", doc, file, remote.ErrExist)
			}
		}
		return append(files, f), nil
	})
}

// withContent stores c durably as file, then records a new version whose
// file list change derives from the current one.
func (r *Repo) withContent(doc remote.ID, token, file string, c remote.Content,
	change func(files []remote.File, f remote.File) ([]remote.File, error)) (remote.Node, error) {
	if err := r.writable(file); err != nil {
		return remote.Node{}, err
	}
	f, err := r.storeBlob(file, c)
	if err != nil {
		return remote.Node{}, err
	}
	return r.newVersion(doc, token, func(files []remote.File) ([]remote.File, error) { return change(files, f) })
}

func (r *Repo) DeleteFile(ctx context.Context, doc remote.ID, token, file string) (remote.Node, error) {
	if err := r.writable(file); err != nil {
		return remote.Node{}, err
	}
	return r.newVersion(doc, token, func(files []remote.File) ([]remote.File, error) {
		for i, old := range files {
			if old.Name != file {
				continue
			}
			if len(files) == 1 {
				return nil, fmt.Errorf("the only file of document %s cannot be removed (delete the document): %w", doc, remote.ErrUnsupported)
			}
			return append(files[:i:i], files[i+1:]...), nil
		}
		return nil, fmt.Errorf("document %s has no file %q: %w", doc, file, remote.ErrNotFound)
	})
}

// newVersion checks the token, lets change derive the new file list from
// the current one and records it as the next version.
func (r *Repo) newVersion(doc remote.ID, token string, change func([]remote.File) ([]remote.File, error)) (remote.Node, error) {
	var n remote.Node
	err := r.db.Update(func(tx *bolt.Tx) error {
		rec, err := getDoc(tx, doc)
		if err != nil {
			return err
		}
		if err := checkToken(rec, token); err != nil {
			return err
		}
		files, err := change(rec.files())
		if err != nil {
			return err
		}
		r.feed.onCommit(tx, rec.ID, rec.Parent)
		now := r.now().UTC()
		last := rec.Versions[len(rec.Versions)-1].N
		rec.Versions = append(rec.Versions, remote.Version{N: last + 1, Time: now, Files: files})
		rec.Rev++
		rec.ModTime = now
		if len(files) == 1 {
			rec.Name = files[0].Name
		}
		if err := put(tx, rec); err != nil {
			return err
		}
		n = rec.node()
		return nil
	})
	return n, err
}

func (r *Repo) Rename(ctx context.Context, id remote.ID, token string, newParent remote.ID, newName string) (remote.Node, error) {
	if err := r.writable(newName); err != nil {
		return remote.Node{}, err
	}
	var n remote.Node
	err := r.db.Update(func(tx *bolt.Tx) error {
		rec, err := get(tx, id)
		if err != nil {
			return err
		}
		if id == rootID {
			return fmt.Errorf("rename the root: %w", remote.ErrPermission)
		}
		if err := checkToken(rec, token); err != nil {
			return err
		}
		r.feed.onCommit(tx, rec.ID, rec.Parent, newParent)
		if newParent != rec.Parent {
			dst, err := get(tx, newParent)
			if err != nil {
				return err
			}
			if dst.Kind != remote.KindFolder {
				return fmt.Errorf("move into %s: %w", newParent, remote.ErrNotFolder)
			}
			// A folder cannot move below itself.
			for p := dst; rec.Kind == remote.KindFolder; {
				if p.ID == rec.ID {
					return fmt.Errorf("move %s into its own subfolder: %w", id, remote.ErrInvalidName)
				}
				if p.ID == rootID {
					break
				}
				if p, err = get(tx, p.Parent); err != nil {
					return err
				}
			}
			if err := unlinkChild(tx, rec.Parent, rec.ID); err != nil {
				return err
			}
			if err := linkChild(tx, newParent, rec.ID); err != nil {
				return err
			}
			rec.Parent = newParent
		}
		rec.Name = newName
		if rec.Kind == remote.KindDocument {
			if files := rec.files(); len(files) == 1 && files[0].Name != newName {
				// The single file takes the new name: record it in the
				// current version without creating a new one.
				cur := &rec.Versions[len(rec.Versions)-1]
				cur.Files = []remote.File{files[0]}
				cur.Files[0].Name = newName
			}
		}
		rec.Rev++
		rec.ModTime = r.now().UTC()
		if err := put(tx, rec); err != nil {
			return err
		}
		n = rec.node()
		return nil
	})
	return n, err
}

func (r *Repo) Delete(ctx context.Context, id remote.ID, token string) error {
	if err := r.writable("-"); err != nil {
		return err
	}
	return r.db.Update(func(tx *bolt.Tx) error {
		rec, err := get(tx, id)
		if err != nil {
			return err
		}
		if id == rootID {
			return fmt.Errorf("delete the root: %w", remote.ErrPermission)
		}
		if err := checkToken(rec, token); err != nil {
			return err
		}
		if kids := tx.Bucket(bucketChildren).Bucket([]byte(id)); kids != nil {
			if k, _ := kids.Cursor().First(); k != nil {
				return fmt.Errorf("delete folder %q: %w", rec.Name, remote.ErrNotEmpty)
			}
			if err := tx.Bucket(bucketChildren).DeleteBucket([]byte(id)); err != nil {
				return err
			}
		}
		if err := unlinkChild(tx, rec.Parent, id); err != nil {
			return err
		}
		r.feed.onCommit(tx, id, rec.Parent)
		// Blobs are content-addressed and may be shared; they stay.
		return tx.Bucket(bucketNodes).Delete([]byte(id))
	})
}

func (r *Repo) writable(name string) error {
	if r.readOnly {
		return remote.ErrReadOnly
	}
	if name == "" {
		return fmt.Errorf("empty name: %w", remote.ErrInvalidName)
	}
	return nil
}

// create assigns an ID to rec and links it below parent.
func (r *Repo) create(tx *bolt.Tx, parent remote.ID, rec *record) error {
	p, err := get(tx, parent)
	if err != nil {
		return err
	}
	if p.Kind != remote.KindFolder {
		return fmt.Errorf("create in %s: %w", parent, remote.ErrNotFolder)
	}
	seq, err := tx.Bucket(bucketNodes).NextSequence()
	if err != nil {
		return err
	}
	rec.ID = remote.ID(strconv.FormatUint(seq, 10))
	rec.Parent = parent
	r.feed.onCommit(tx, rec.ID, parent)
	if err := put(tx, rec); err != nil {
		return err
	}
	return linkChild(tx, parent, rec.ID)
}

func linkChild(tx *bolt.Tx, parent, child remote.ID) error {
	kids, err := tx.Bucket(bucketChildren).CreateBucketIfNotExists([]byte(parent))
	if err != nil {
		return err
	}
	return kids.Put([]byte(child), nil)
}

func unlinkChild(tx *bolt.Tx, parent, child remote.ID) error {
	kids := tx.Bucket(bucketChildren).Bucket([]byte(parent))
	if kids == nil {
		return nil
	}
	return kids.Delete([]byte(child))
}

func checkToken(rec *record, token string) error {
	if token != strconv.Itoa(rec.Rev) {
		return fmt.Errorf("%s %q has version %d, the update was based on %q: %w",
			rec.Kind, rec.Name, rec.Rev, token, remote.ErrConflict)
	}
	return nil
}

func get(tx *bolt.Tx, id remote.ID) (*record, error) {
	v := tx.Bucket(bucketNodes).Get([]byte(id))
	if v == nil {
		return nil, fmt.Errorf("node %s: %w", id, remote.ErrNotFound)
	}
	rec := new(record)
	if err := json.Unmarshal(v, rec); err != nil {
		return nil, fmt.Errorf("node %s: corrupt record: %v", id, err)
	}
	return rec, nil
}

func getDoc(tx *bolt.Tx, id remote.ID) (*record, error) {
	rec, err := get(tx, id)
	if err != nil {
		return nil, err
	}
	if rec.Kind != remote.KindDocument {
		return nil, fmt.Errorf("node %s: %w", id, remote.ErrIsFolder)
	}
	return rec, nil
}

func put(tx *bolt.Tx, rec *record) error {
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketNodes).Put([]byte(rec.ID), v)
}

func (r *Repo) blobPath(sum string) string {
	return filepath.Join(r.dir, "blobs", sum[:2], sum)
}

// storeBlob writes c durably under its SHA-256 and describes it as a file.
func (r *Repo) storeBlob(name string, c remote.Content) (remote.File, error) {
	tmp, err := os.CreateTemp(filepath.Join(r.dir, "blobs", "tmp"), "blob-*")
	if err != nil {
		return remote.File{}, fmt.Errorf("store %q: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.NewSectionReader(c, 0, c.Size))
	if err == nil && n != c.Size {
		err = fmt.Errorf("read %d of %d bytes", n, c.Size)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if err != nil {
		return remote.File{}, fmt.Errorf("store %q: %w", name, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	dst := r.blobPath(sum)
	if _, err := os.Stat(dst); err != nil {
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return remote.File{}, fmt.Errorf("store %q: %w", name, err)
		}
		if err := os.Rename(tmp.Name(), dst); err != nil {
			return remote.File{}, fmt.Errorf("store %q: %w", name, err)
		}
		if d, err := os.Open(filepath.Dir(dst)); err == nil {
			_ = d.Sync()
			d.Close()
		}
	}
	return remote.File{Name: name, Size: n, ModTime: r.now().UTC(), ContentID: sum, SHA256: sum}, nil
}

func (r *Repo) openBlob(f remote.File, off, length int64) (io.ReadCloser, error) {
	fh, err := os.Open(r.blobPath(f.SHA256))
	if err != nil {
		return nil, fmt.Errorf("content of %q: %w", f.Name, err)
	}
	if off < 0 {
		off = 0
	}
	if length < 0 || off+length > f.Size {
		length = max(f.Size-off, 0)
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(fh, off, length), fh}, nil
}

// Fields returns a node's metadata.
func (r *Repo) Fields(ctx context.Context, id remote.ID) (map[string]string, error) {
	var out map[string]string
	err := r.db.View(func(tx *bolt.Tx) error {
		rec, err := get(tx, id)
		if err != nil {
			return err
		}
		out = make(map[string]string, len(rec.Fields))
		for k, v := range rec.Fields {
			out[k] = v
		}
		return nil
	})
	return out, err
}

// SetField sets or (value nil) clears one field; any name is kept.
func (r *Repo) SetField(ctx context.Context, id remote.ID, token, name string, value *string) (remote.Node, error) {
	if err := r.writable(name); err != nil {
		return remote.Node{}, err
	}
	if value != nil && len(*value) > 64<<10 {
		return remote.Node{}, fmt.Errorf("field %q: %d bytes, at most 64 KiB: %w", name, len(*value), remote.ErrInvalidName)
	}
	var n remote.Node
	err := r.db.Update(func(tx *bolt.Tx) error {
		rec, err := get(tx, id)
		if err != nil {
			return err
		}
		if err := checkToken(rec, token); err != nil {
			return err
		}
		if value == nil {
			delete(rec.Fields, name)
		} else {
			if rec.Fields == nil {
				rec.Fields = map[string]string{}
			}
			rec.Fields[name] = *value
		}
		r.feed.onCommit(tx, rec.ID, rec.Parent)
		rec.Rev++ // a change of the node, not of its content
		if err := put(tx, rec); err != nil {
			return err
		}
		n = rec.node()
		return nil
	})
	return n, err
}
