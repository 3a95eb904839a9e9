package core

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/dmsfs/dmsfs/remote"
)

// Pinned content (dmsfs pin PATH): the content of every file below a
// pinned path is kept on disk in <cache-dir>/pinned/, one file per content
// ID, so that it reads offline and after a restart. Reads look there
// first. The pinned paths are kept in pinned/paths.json; a file whose
// content another client changed is fetched again when the change is seen.
// The disk they use is bounded by Options.PinLimit.

type pins struct {
	mu    sync.Mutex // guards paths and used
	paths []string   // pinned mount paths, "/" rooted
	used  int64
}

func (f *FS) pinDir() string { return filepath.Join(f.spool.Dir(), "pinned") }

func (f *FS) pinPath(contentID string) string {
	sum := sha256.Sum256([]byte(contentID))
	return filepath.Join(f.pinDir(), hex.EncodeToString(sum[:16]))
}

// loadPins reads the pinned paths and measures their disk (at New).
func (f *FS) loadPins() {
	b, err := os.ReadFile(filepath.Join(f.pinDir(), "paths.json"))
	if err == nil {
		_ = json.Unmarshal(b, &f.pins.paths)
	}
	f.pins.used = diskUse(f.pinDir())
}

func (f *FS) savePins() error {
	b, err := json.Marshal(f.pins.paths)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(f.pinDir(), 0o700); err != nil {
		return err
	}
	tmp := filepath.Join(f.pinDir(), "paths.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(f.pinDir(), "paths.json"))
}

// pinned tells whether a mount path lies below a pinned one.
func (f *FS) pinned(p string) bool {
	f.pins.mu.Lock()
	defer f.pins.mu.Unlock()
	for _, root := range f.pins.paths {
		if p == root || root == "/" || strings.HasPrefix(p, root+"/") {
			return true
		}
	}
	return false
}

// PinReport says what a pin did.
type PinReport struct {
	Files   int   `json:"files"`
	Fetched int64 `json:"fetched"` // bytes fetched now
	Used    int64 `json:"used"`    // bytes pinned in all
}

// Pin keeps the content of everything below rel on disk.
func (f *FS) Pin(ctx context.Context, rel string) (PinReport, error) {
	n, p, err := f.nodeAt(ctx, rel)
	if err != nil {
		return PinReport{}, err
	}
	f.pins.mu.Lock()
	if !slices.Contains(f.pins.paths, p) {
		f.pins.paths = append(f.pins.paths, p)
	}
	err = f.savePins()
	f.pins.mu.Unlock()
	if err != nil {
		return PinReport{}, fmt.Errorf("pin %s: %w", p, err)
	}
	var rep PinReport
	err = f.walk(ctx, n, func(file *File) error {
		got, err := f.pinFile(ctx, file)
		rep.Files++
		rep.Fetched += got
		return err
	})
	f.pins.mu.Lock()
	rep.Used = f.pins.used
	f.pins.mu.Unlock()
	return rep, err
}

// Unpin forgets rel's pin and the content kept for it.
func (f *FS) Unpin(ctx context.Context, rel string) (PinReport, error) {
	n, p, err := f.nodeAt(ctx, rel)
	if err != nil {
		return PinReport{}, err
	}
	f.pins.mu.Lock()
	i := slices.Index(f.pins.paths, p)
	if i < 0 {
		f.pins.mu.Unlock()
		return PinReport{}, fmt.Errorf("%s is not pinned (pins: %s): %w", p, strings.Join(f.pins.paths, ", "), remote.ErrNotFound)
	}
	f.pins.paths = slices.Delete(f.pins.paths, i, i+1)
	err = f.savePins()
	f.pins.mu.Unlock()
	if err != nil {
		return PinReport{}, err
	}
	var rep PinReport
	err = f.walk(ctx, n, func(file *File) error {
		if f.pinned(file.Path()) {
			return nil // still below another pin
		}
		file.mu.Lock()
		cid := file.rf.ContentID
		file.mu.Unlock()
		if st, err := os.Stat(f.pinPath(cid)); err == nil {
			if os.Remove(f.pinPath(cid)) == nil {
				f.pins.mu.Lock()
				f.pins.used -= st.Size()
				f.pins.mu.Unlock()
				rep.Files++
			}
		}
		return nil
	})
	f.pins.mu.Lock()
	rep.Used = f.pins.used
	f.pins.mu.Unlock()
	return rep, err
}

// nodeAt is the node at a mount path (relative to the mount point; "" is
// the root), and the path cleaned.
func (f *FS) nodeAt(ctx context.Context, rel string) (Node, string, error) {
	var n Node = f.root
	parts := strings.FieldsFunc(rel, func(r rune) bool { return r == '/' })
	for i, name := range parts {
		d, ok := n.(*Dir)
		if !ok {
			return nil, "", fmt.Errorf("%s: %w", strings.Join(parts[:i], "/"), remote.ErrNotFolder)
		}
		ch, err := d.child(ctx, name)
		if err != nil {
			return nil, "", err
		}
		if ch == nil {
			return nil, "", fmt.Errorf("%s: %w", strings.Join(parts[:i+1], "/"), remote.ErrNotFound)
		}
		n = ch
	}
	return n, "/" + strings.Join(parts, "/"), nil
}

// walk calls fn for every file below n (n itself if a file).
func (f *FS) walk(ctx context.Context, n Node, fn func(*File) error) error {
	switch x := n.(type) {
	case *File:
		return fn(x)
	case *Dir:
		list, _, err := x.listing(ctx, false)
		if err != nil {
			return err
		}
		for _, e := range list {
			ch, err := x.child(ctx, e.Name)
			if err != nil || ch == nil {
				continue
			}
			if err := f.walk(ctx, ch, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// errPinBudget is a pin beyond Options.PinLimit.
var errPinBudget = errors.New("the pin budget (--pin-size) is used up")

// pinFile keeps one file's content on disk; the bytes it fetched.
func (f *FS) pinFile(ctx context.Context, file *File) (int64, error) {
	file.mu.Lock()
	if file.temp || file.doc == nil || !file.exists {
		file.mu.Unlock()
		return 0, nil // not in the repository (yet): nothing to keep
	}
	rf, fetch := file.rf, file.fetcher()
	file.mu.Unlock()
	dst := f.pinPath(rf.ContentID)
	if _, err := os.Stat(dst); err == nil {
		return 0, nil
	}
	f.pins.mu.Lock()
	if f.opts.PinLimit > 0 && f.pins.used+rf.Size > f.opts.PinLimit {
		f.pins.mu.Unlock()
		return 0, fmt.Errorf("%s (%d bytes): %w", file.Path(), rf.Size, errPinBudget)
	}
	f.pins.used += rf.Size
	f.pins.mu.Unlock()
	if err := os.MkdirAll(f.pinDir(), 0o700); err != nil {
		return 0, err
	}
	tmp, err := os.CreateTemp(f.pinDir(), "fetch-*")
	if err != nil {
		return 0, err
	}
	n, err := download(ctx, fetch, rf.Size, tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		f.pins.mu.Lock()
		f.pins.used -= rf.Size
		f.pins.mu.Unlock()
		return 0, fmt.Errorf("pin %s: %w", file.Path(), err)
	}
	return n, nil
}

// pinnedContent opens the kept content of contentID, nil if none.
func (f *FS) pinnedContent(contentID string) *os.File {
	f.pins.mu.Lock()
	none := len(f.pins.paths) == 0 // Unpin removes what it kept
	f.pins.mu.Unlock()
	if contentID == "" || none {
		return nil // no failed open(2) for each file opened (rsync: 5,000)
	}
	fh, err := os.Open(f.pinPath(contentID))
	if err != nil {
		return nil
	}
	return fh
}

// repin fetches a pinned file's new content (another client changed it).
func (f *FS) repin(file *File) {
	if !f.pinned(file.Path()) {
		return
	}
	go func() {
		if _, err := f.pinFile(context.Background(), file); err != nil {
			f.log.Warn("a pinned file's new content could not be kept", "path", file.Path(), "err", err)
		}
	}()
}
