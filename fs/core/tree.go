package core

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash/fnv"
	"os"
	"path/filepath"
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

// keepListing records a directory's listing (mu held) when it changed
// since the last record.
func (d *Dir) keepListing() {
	h := fnv.New64a()
	b, err := json.Marshal(d.entries)
	if err != nil {
		return
	}
	h.Write(b)
	d.treeDirty = false
	if sum := h.Sum64(); sum != d.keptSum {
		d.keptSum = sum
		d.fsys.saveTree(d.id, knownListing{Listed: d.listed, Entries: d.entries})
	}
}

// lastKnown is the last listing recorded for d, nil if none.
func (f *FS) lastKnown(d *Dir) (map[string]remote.Node, time.Time) {
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
