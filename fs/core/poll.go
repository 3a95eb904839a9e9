package core

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dmsfs/dmsfs/remote"
)

// Other clients' changes (SEMANTICS.md, "Other clients"). Every
// PollInterval the repository is asked what changed since the last round
// (remote.Changes; one or a few requests). The directories the mount has
// looked up that hold a changed object are listed again at once; names
// whose object changed, appeared or went are told to the kernel
// (Notifier.EntryChanged), and files whose content changed lose their
// cached pages and attributes (ContentChanged). A clean file shows the new
// content from then on; one with local changes keeps them, and its upload
// finds the conflict as always. Close-to-open: an open after the round
// gets no old pages (File.Open keeps the page cache only for the same
// generation).

// Notifier is told what the kernel must forget: the go-fuse adapter
// answers with NotifyEntry and NotifyContent.
type Notifier interface {
	// EntryChanged: name in directory parent names something else now.
	EntryChanged(parent uint64, name string)
	// ContentChanged: the content (or a directory's listing) and the
	// attributes of ino changed.
	ContentChanged(ino uint64)
}

// poller is the state of change polling; its fields are guarded by mu,
// which is held for a whole round (rounds never overlap).
type poller struct {
	// okAt and failAt are when the last round that succeeded and the
	// last that failed started (f.now, Unix nanoseconds; 0: none); read
	// without mu, by listings asking whether the poller vouches for them.
	okAt, failAt atomic.Int64

	mu       sync.Mutex
	cursor   string
	notifier Notifier
	rounds   uint64
	stop     chan struct{}
	stopOnce sync.Once
}

// SetNotifier sets who tells the kernel (the adapter, before mounting).
func (f *FS) SetNotifier(n Notifier) {
	f.poll.mu.Lock()
	f.poll.notifier = n
	f.poll.mu.Unlock()
}

// StartPolling takes the repository's current cursor and polls every
// PollInterval until Close; nothing where the interval is 0 or the
// repository cannot tell changes.
func (f *FS) StartPolling(ctx context.Context) {
	if f.opts.PollInterval <= 0 {
		return // a repository opened later (offline start) may tell changes: asked each round
	}
	if err := f.PollChanges(ctx); err != nil {
		f.log.Warn("change polling: no starting point yet; trying again each interval", "err", err)
	}
	go func() {
		t := time.NewTicker(f.opts.PollInterval)
		defer t.Stop()
		for {
			select {
			case <-f.poll.stop:
				return
			case <-t.C:
				if err := f.PollChanges(context.Background()); err != nil {
					f.log.Warn("change polling failed; other clients' changes show when listings expire", "err", err)
				}
			}
		}
	}()
}

func (f *FS) stopPolling() { f.poll.stopOnce.Do(func() { close(f.poll.stop) }) }

// PollRounds counts the rounds that asked the repository for changes.
func (f *FS) PollRounds() uint64 {
	f.poll.mu.Lock()
	defer f.poll.mu.Unlock()
	return f.poll.rounds
}

// PollChanges runs one round: the first takes the starting cursor, the
// next ones apply what changed since.
func (f *FS) PollChanges(ctx context.Context) error {
	ch, ok := remote.As[remote.Changes](f.repo)
	if !ok {
		return nil
	}
	f.poll.mu.Lock()
	defer f.poll.mu.Unlock()
	start := f.now().UnixNano()
	dirs, parents := f.liveDirs()
	var known []remote.ID
	if f.poll.cursor != "" {
		seen := map[remote.ID]bool{}
		for _, d := range dirs {
			d.mu.Lock()
			for _, n := range d.entries {
				if !seen[n.ID] {
					seen[n.ID] = true
					known = append(known, n.ID)
				}
			}
			d.mu.Unlock()
		}
	}
	cs, err := ch.Changes(ctx, f.poll.cursor, known)
	if err != nil {
		f.poll.failAt.Store(start)
		return err
	}
	first := f.poll.cursor == ""
	f.poll.cursor = cs.Cursor
	f.poll.rounds++
	if first {
		f.poll.okAt.Store(start)
		return nil
	}
	changed := make(map[remote.ID]bool, len(cs.Changed))
	for _, id := range cs.Changed {
		changed[id] = true
	}
	folders := make(map[remote.ID]bool, len(cs.Folders))
	for _, id := range cs.Folders {
		folders[id] = true
	}
	subtrees := make(map[remote.ID]bool, len(cs.Subtrees))
	for _, id := range cs.Subtrees {
		subtrees[id] = true
	}
	below := map[*Dir]bool{} // in a suspect subtree; dirs come parents first
	for _, d := range dirs {
		below[d] = subtrees[d.id] || below[parents[d]]
		hit := cs.All || below[d] || folders[d.id] || (d.doc != nil && changed[d.id])
		if !hit {
			d.mu.Lock()
			for _, n := range d.entries {
				if changed[n.ID] {
					hit = true
					break
				}
			}
			d.mu.Unlock()
		}
		if hit {
			d.revalidate(ctx, f.poll.notifier)
		}
	}
	if n := len(cs.Changed); n > 0 || cs.All {
		f.log.Debug("other clients' changes", "objects", n, "folders", len(cs.Folders), "all", cs.All)
	}
	f.poll.okAt.Store(start)
	// Version histories may have grown.
	f.changes.Add(1)
	return nil
}

// maxVouch bounds how long the poller keeps a listing fresh: a change a
// repository's poll could miss (see its Changes) still shows after it.
const maxVouch = 30 * time.Minute

// vouches tells whether the poller has seen every change since a listing
// taken at listed: a round that started after it succeeded, none failed
// since, and the poller is alive. Such a listing needs no revalidation
// when DirCacheTime has passed (up to maxVouch).
func (f *FS) vouches(listed time.Time) bool {
	if f.opts.PollInterval <= 0 || f.now().Sub(listed) > maxVouch {
		return false
	}
	ok, fail, at := f.poll.okAt.Load(), f.poll.failAt.Load(), listed.UnixNano()
	return ok > at && fail < at && f.now().UnixNano()-ok < int64(2*f.opts.PollInterval)
}

// liveDirs are the directories the mount has looked up, each after its
// parent, with their parents.
func (f *FS) liveDirs() ([]*Dir, map[*Dir]*Dir) {
	var out []*Dir
	parents := map[*Dir]*Dir{}
	stack := []*Dir{f.root}
	for len(stack) > 0 {
		d := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		out = append(out, d)
		d.mu.Lock()
		for _, k := range d.kids {
			if sub, ok := k.(*Dir); ok {
				stack = append(stack, sub)
				parents[sub] = d
			}
		}
		if sd := d.searchDir; sd != nil {
			stack = append(stack, sd)
			parents[sd] = d
		}
		d.mu.Unlock()
	}
	return out, parents
}

// revalidate lists the directory again now and tells n what the kernel
// must forget.
func (d *Dir) revalidate(ctx context.Context, n Notifier) {
	d.mu.Lock()
	old := make(map[string]remote.Node, len(d.entries))
	for name, e := range d.entries {
		old[name] = e
	}
	content := map[*File]string{}
	for _, k := range d.kids {
		if f, ok := k.(*File); ok {
			f.mu.Lock()
			content[f] = f.rf.ContentID
			f.mu.Unlock()
		}
	}
	d.mu.Unlock()
	d.stale.Store(true)
	if err := d.refresh(ctx); err != nil {
		d.fsys.log.Warn("listing a changed folder failed; it is listed again when used", "path", d.Path(), "err", err)
		return
	}
	var changedFiles []*File
	for f, was := range content {
		f.mu.Lock()
		now := f.rf.ContentID
		f.mu.Unlock()
		if now != was {
			changedFiles = append(changedFiles, f)
			d.fsys.repin(f)
		}
	}
	if n == nil {
		return
	}
	d.mu.Lock()
	var names []string
	for name, e := range d.entries {
		if o, had := old[name]; !had || !sameEntry(o, e) {
			names = append(names, name)
		}
	}
	for name := range old {
		if _, still := d.entries[name]; !still {
			names = append(names, name)
		}
	}
	d.mu.Unlock()
	for _, f := range changedFiles {
		n.ContentChanged(f.ino)
	}
	for _, name := range names {
		n.EntryChanged(d.ino, name)
	}
	if len(names) > 0 {
		n.ContentChanged(d.ino) // the kernel's cached listing
	}
}

// sameEntry tells whether a listing shows the same object unchanged.
func sameEntry(a, b remote.Node) bool {
	if a.ID != b.ID || a.Token != b.Token || a.Kind != b.Kind || len(a.Files) != len(b.Files) {
		return false
	}
	for i := range a.Files {
		if a.Files[i].ContentID != b.Files[i].ContentID || a.Files[i].Name != b.Files[i].Name {
			return false
		}
	}
	return true
}
