package embedded

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	bolt "go.etcd.io/bbolt"

	"github.com/dmsfs/dmsfs/remote"
)

// The embedded repository's change feed: every committed change is noted
// with the objects and folders it touched, in memory (the repository is
// one process's; mounts in that process share it). The last feedSize
// changes are kept; a cursor older than that asks for everything.

const feedSize = 10000

type change struct {
	seq     uint64
	id      remote.ID
	folders []remote.ID
}

type feed struct {
	mu      sync.Mutex // guards the fields below
	seq     uint64     // the last change's number
	changes []change   // oldest first, at most feedSize
}

// onCommit notes a change of id in folders once tx commits.
func (f *feed) onCommit(tx *bolt.Tx, id remote.ID, folders ...remote.ID) {
	tx.OnCommit(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.seq++
		f.changes = append(f.changes, change{seq: f.seq, id: id, folders: folders})
		if len(f.changes) > feedSize {
			f.changes = append([]change(nil), f.changes[len(f.changes)-feedSize:]...)
		}
	})
}

// Changes reports the changes after cursor (a change number).
func (r *Repo) Changes(ctx context.Context, cursor string, known []remote.ID) (remote.ChangeSet, error) {
	f := &r.feed
	f.mu.Lock()
	defer f.mu.Unlock()
	out := remote.ChangeSet{Cursor: strconv.FormatUint(f.seq, 10)}
	if cursor == "" {
		return out, nil
	}
	since, err := strconv.ParseUint(cursor, 10, 64)
	if err != nil || since > f.seq {
		return remote.ChangeSet{}, fmt.Errorf("embedded: cursor %q is none of this repository's: %w", cursor, remote.ErrInvalidName)
	}
	if since == f.seq {
		return out, nil
	}
	if len(f.changes) == 0 || f.changes[0].seq > since+1 {
		out.All = true
		return out, nil
	}
	seen := map[remote.ID]bool{}
	for _, c := range f.changes {
		if c.seq <= since {
			continue
		}
		if !seen[c.id] {
			seen[c.id] = true
			out.Changed = append(out.Changed, c.id)
		}
		for _, p := range c.folders {
			if !seen["folder:"+p] {
				seen["folder:"+p] = true
				out.Folders = append(out.Folders, p)
			}
		}
	}
	return out, nil
}
