package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// Disk keeps whole contents on disk, by content key, within a byte budget
// (least recently used out first). A stream that reads a file from its
// first byte to its last writes it here; after that the file's blocks come
// from disk instead of the repository once the memory cache dropped them,
// across remounts too (keys name the content version, so a changed file
// never finds old bytes), and the kernel may read the file directly from
// it (FUSE passthrough). Like the tree, it is a cache: files are written
// without fsync under a temporary name and renamed when complete, so a
// crash loses an entry, never makes a wrong one.
type Disk struct {
	dir string
	max int64

	mu    sync.Mutex
	files map[string]*diskFile // by file name; guarded by mu
	used  int64                // bytes of files; guarded by mu
	tick  uint64               // use counter for LRU; guarded by mu
}

type diskFile struct {
	size int64
	used uint64
}

// OpenDisk opens (or makes) the disk cache in dir holding at most max
// bytes; leftovers of interrupted writes are removed.
func OpenDisk(dir string, max int64) (*Disk, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("disk cache: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("disk cache: %w", err)
	}
	type found struct {
		name string
		info os.FileInfo
	}
	var kept []found
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || strings.HasSuffix(e.Name(), ".tmp") {
			_ = os.Remove(p)
			continue
		}
		kept = append(kept, found{e.Name(), info})
	}
	// Older first: their use counts are lower, so they go first.
	sort.Slice(kept, func(i, j int) bool { return kept[i].info.ModTime().Before(kept[j].info.ModTime()) })
	d := &Disk{dir: dir, max: max, files: map[string]*diskFile{}}
	for _, k := range kept {
		d.tick++
		d.files[k.name] = &diskFile{size: k.info.Size(), used: d.tick}
		d.used += k.info.Size()
	}
	d.mu.Lock()
	d.evict()
	d.mu.Unlock()
	return d, nil
}

func diskName(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}

// Open opens the kept content of key if it is there whole (size bytes).
func (d *Disk) Open(key string, size int64) (*os.File, bool) {
	name := diskName(key)
	d.mu.Lock()
	e := d.files[name]
	if e == nil || e.size != size {
		d.mu.Unlock()
		return nil, false
	}
	d.tick++
	e.used = d.tick
	d.mu.Unlock()
	fh, err := os.Open(filepath.Join(d.dir, name))
	if err != nil {
		d.forget(name)
		return nil, false
	}
	return fh, true
}

// Has tells whether key's content of size bytes is kept.
func (d *Disk) Has(key string, size int64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.files[diskName(key)]
	return e != nil && e.size == size
}

func (d *Disk) forget(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e := d.files[name]; e != nil {
		d.used -= e.size
		delete(d.files, name)
	}
}

// evict removes the least recently used files until the rest fit (mu
// held). Open descriptors of a removed file still read it.
func (d *Disk) evict() {
	if d.used <= d.max {
		return
	}
	names := make([]string, 0, len(d.files))
	for n := range d.files {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return d.files[names[i]].used < d.files[names[j]].used })
	for _, n := range names {
		if d.used <= d.max {
			return
		}
		_ = os.Remove(filepath.Join(d.dir, n))
		d.used -= d.files[n].size
		delete(d.files, n)
	}
}

// Create starts keeping key's content of size bytes; nil when it cannot
// fit the budget at all.
func (d *Disk) Create(key string, size int64) *DiskWriter {
	if size > d.max/2 {
		return nil // one file would push out everything else
	}
	name := diskName(key)
	fh, err := os.CreateTemp(d.dir, name+".*.tmp")
	if err != nil {
		return nil
	}
	return &DiskWriter{d: d, name: name, size: size, f: fh}
}

// DiskWriter writes one content in order; Commit keeps it once whole.
type DiskWriter struct {
	d    *Disk
	name string
	size int64
	f    *os.File
	n    int64
}

// Write appends p.
func (w *DiskWriter) Write(p []byte) error {
	n, err := w.f.Write(p)
	w.n += int64(n)
	return err
}

// errIncomplete is a Commit of fewer bytes than the content has.
var errIncomplete = errors.New("disk cache: content incomplete")

// Commit keeps the content if all of it was written, else drops it.
func (w *DiskWriter) Commit() error {
	if w.n != w.size {
		w.Abort()
		return errIncomplete
	}
	tmp := w.f.Name()
	if err := w.f.Close(); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, filepath.Join(w.d.dir, w.name)); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	d := w.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if old := d.files[w.name]; old != nil {
		d.used -= old.size
	}
	d.tick++
	d.files[w.name] = &diskFile{size: w.size, used: d.tick}
	d.used += w.size
	d.evict()
	return nil
}

// Abort drops what was written.
func (w *DiskWriter) Abort() {
	tmp := w.f.Name()
	_ = w.f.Close()
	_ = os.Remove(tmp)
}

// Used is the bytes the disk cache holds.
func (d *Disk) Used() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.used
}
