package core

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash/fnv"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/dmsfs/dmsfs/remote"
)

// The last known tree, for working offline across restarts: each listing
// the mount received, and the root, in <cache-dir>/tree/ as a JSON file
// per directory. It is a cache: written without fsync (a crash may leave
// a listing out, never a wrong one, as a file is replaced whole), read
// only when the repository cannot be reached.

type knownListing struct {
	Listed  time.Time              `json:"listed"`
	Entries map[string]remote.Node `json:"entries"`
}

func (f *FS) treePath(id remote.ID) string {
	sum := sha256.Sum256([]byte(id))
	return filepath.Join(f.spool.Dir(), "tree", hex.EncodeToString(sum[:12])+".json")
}

// saveTree writes v as the record of id, replacing the old one whole.
func (f *FS) saveTree(id remote.ID, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	f.saveTreeBytes(id, b)
}

// saveTreeBytes writes b, JSON, as the record of id.
func (f *FS) saveTreeBytes(id remote.ID, b []byte) {
	p := f.treePath(id)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return
	}
	tmp := p + ".tmp"
	if os.WriteFile(tmp, b, 0o600) == nil {
		_ = os.Rename(tmp, p)
	}
}

func (f *FS) loadTree(id remote.ID, v any) bool {
	b, err := os.ReadFile(f.treePath(id))
	return err == nil && json.Unmarshal(b, v) == nil
}

// keepListing records a directory's listing (mu held) in the background:
// encoding and writing a big folder's listing would otherwise hold up
// the lookup that fetched it.
func (d *Dir) keepListing() {
	d.treeDirty = false
	if d.search != nil {
		return // results, not a folder's listing
	}
	d.fsys.tree.keep(d.fsys, d.id, knownListing{Listed: d.listed, Entries: maps.Clone(d.entries)})
}

// treeWriter writes kept listings one after the other in a goroutine
// that runs while some are pending: the newest of each directory, and
// only where it changed since the last written. It starts treeDelay
// after the first: a walk of a tree (ls -lR, rsync) lists its folders
// without the writer's encoding sharing the CPU, and a folder listed
// again meanwhile is written once.
type treeWriter struct {
	mu      sync.Mutex
	pending map[remote.ID]knownListing // guarded by mu
	sums    map[remote.ID]uint64       // hash of the listing last written; guarded by mu
	running bool                       // the writer runs; guarded by mu
	idle    chan struct{}              // closed when the writer ends; guarded by mu
	hurry   chan struct{}              // closed by wait: no more delay; guarded by mu
}

// treeDelay is how long kept listings wait before they are written.
const treeDelay = time.Second

func (w *treeWriter) keep(f *FS, id remote.ID, l knownListing) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pending == nil {
		w.pending, w.sums = map[remote.ID]knownListing{}, map[remote.ID]uint64{}
	}
	w.pending[id] = l
	if !w.running {
		w.running, w.idle, w.hurry = true, make(chan struct{}), make(chan struct{})
		go w.run(f, w.hurry)
	}
}

func (w *treeWriter) run(f *FS, hurry <-chan struct{}) {
	t := time.NewTimer(treeDelay)
	select {
	case <-t.C:
	case <-hurry:
		t.Stop()
	}
	for {
		w.mu.Lock()
		var id remote.ID
		var l knownListing
		found := false
		for id, l = range w.pending {
			found = true
			break
		}
		if !found {
			w.running = false
			close(w.idle)
			w.mu.Unlock()
			return
		}
		delete(w.pending, id)
		last := w.sums[id]
		w.mu.Unlock()
		entries, err := json.Marshal(l.Entries)
		if err != nil {
			continue
		}
		h := fnv.New64a()
		h.Write(entries)
		if sum := h.Sum64(); sum != last {
			// A knownListing, its entries encoded once (a struct with
			// them as json.RawMessage would have them checked again).
			listed, err := l.Listed.MarshalJSON()
			if err != nil {
				continue
			}
			b := make([]byte, 0, len(entries)+len(listed)+24)
			b = append(append(append(b, `{"listed":`...), listed...), `,"entries":`...)
			f.saveTreeBytes(id, append(append(b, entries...), '}'))
			w.mu.Lock()
			w.sums[id] = sum
			w.mu.Unlock()
		}
	}
}

// wait returns once what was pending is written.
func (w *treeWriter) wait() {
	w.mu.Lock()
	idle, running := w.idle, w.running
	if running {
		select {
		case <-w.hurry:
		default:
			close(w.hurry)
		}
	}
	w.mu.Unlock()
	if running {
		<-idle
	}
}

// lastKnown is the last listing recorded for d, nil if none.
func (f *FS) lastKnown(d *Dir) (map[string]remote.Node, time.Time) {
	if d.search != nil {
		return nil, time.Time{}
	}
	f.tree.wait() // the listings received last may not be written yet
	var l knownListing
	if !f.loadTree(d.id, &l) || l.Entries == nil {
		return nil, time.Time{}
	}
	f.log.Info("offline: showing the last known listing", "path", d.Path(), "listed", l.Listed.Format(time.RFC3339))
	return l.Entries, l.Listed
}

// rootRecord names the root's record (no repository ID is empty).
const rootRecord = remote.ID("")

// root is the repository's root: asked for, else (the repository
// unreachable) the one recorded by an earlier mount.
func (f *FS) rootNode(ctx context.Context, ask func() (remote.Node, error)) (remote.Node, error) {
	n, err := ask()
	if err == nil {
		f.saveTree(rootRecord, n)
		return n, nil
	}
	var kept remote.Node
	if errors.Is(err, remote.ErrUnavailable) && f.loadTree(rootRecord, &kept) && kept.ID != "" {
		f.log.Warn("the repository is unreachable: starting offline from the last known tree", "err", err)
		f.avail.since = f.now()
		return kept, nil
	}
	return remote.Node{}, err
}

// flushTree lists again, once, the directories this mount changed since
// their last listing, so that the kept tree shows what the mount made
// (at unmount; nothing while offline: the journal has those changes).
func (f *FS) flushTree(ctx context.Context) {
	if !f.Offline().IsZero() {
		return
	}
	dirs, _ := f.liveDirs()
	for _, d := range dirs {
		d.mu.Lock()
		dirty := d.treeDirty
		d.mu.Unlock()
		if dirty {
			d.stale.Store(true)
			if err := d.refresh(ctx); err != nil {
				f.log.Debug("the kept tree misses a folder's last changes", "path", d.Path(), "err", err)
			}
		}
	}
}
