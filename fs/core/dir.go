package core

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/versions"
)

// Dir is a folder, or a document with several files (doc != nil).
type Dir struct {
	fsys *FS
	ino  uint64
	id   remote.ID
	doc  *docRef
	// stale forces the next listing to ask the server (set where the
	// Dir's lock may not be taken).
	stale atomic.Bool

	// nsMu serialises this directory's namespace changes; see the lock
	// order in core.go.
	nsMu sync.Mutex

	// parent and name are where the directory is; guarded by fsys.treeMu.
	parent *Dir
	name   string

	// amu is a leaf lock guarding node, attr and the fields cache.
	amu  sync.Mutex
	node remote.Node
	attr localAttr
	// treeDirty: this mount changed the directory since its listing was
	// last recorded (tree.go). Guarded by mu.
	treeDirty bool
	// fields are the repository's fields as read at fieldsAt for token
	// fieldsToken (xattr.go); nil until read.
	fields      map[string]string
	fieldsToken string
	fieldsAt    time.Time

	// mu guards the fields below.
	mu sync.Mutex
	// entries is the last listing: mount name → child node. In a document
	// directory each entry is a one-file node per file.
	entries map[string]remote.Node
	listed  time.Time
	// listedSeq is fsys.seq when the listing in entries began.
	listedSeq uint64
	// inflight is the listing under way, if any.
	inflight *listCall
	// gen counts this mount's changes of entries, local, hidden and
	// unlinked: a listing that started before one may predate it.
	gen uint64
	// aheadNames are the names in entries, sorted, for readAhead, and
	// aheadOf the listing they were taken from (rebuilt once it differs).
	aheadNames []string
	aheadOf    namesOf
	// kids are the live nodes shown for entries, so that a name keeps its
	// node (and its open state) from lookup to lookup.
	kids map[string]Node
	// local holds files shown here that the listing does not (yet) show:
	// temp files, files not uploaded yet, files renamed here. It overlays
	// entries.
	local map[string]*File
	// hidden are listed names moved aside to a temp name; see File.shadowDir.
	hidden map[string]*File
	// unlinked are documents unlinked a moment ago, still on the server
	// until their deletion runs; see Unlink.
	unlinked   map[string]*unlinkItem
	versions   *Versions
	renditions *Renditions
	// views are the hidden views found by name (view), by name.
	views map[string]remote.Node
	// volatile: a view's folder that is listed anew at each use (set at
	// creation).
	volatile bool
	// search makes the directory a search view (search.go): its entries
	// are what a query finds; set at creation. searchDir is this
	// directory's .search, once looked up (guarded by mu).
	search    *searchSpec
	searchDir *Dir
	gone      bool
	// kernelList is a hash of the listing the kernel may hold in its
	// readdir cache; 0 when it holds none. See Listing.
	kernelList uint64
	// probes are namesake's listings under way, lastProbe the newest
	// done (both guarded by mu).
	probes    []*nameProbe
	lastProbe *nameProbe
}

var _ Node = (*Dir)(nil)

func newDir(fsys *FS, n remote.Node, doc *docRef) *Dir {
	d := &Dir{fsys: fsys, ino: fsys.nextIno(), id: n.ID, doc: doc, node: n,
		kids: map[string]Node{}, local: map[string]*File{}, hidden: map[string]*File{}, unlinked: map[string]*unlinkItem{}}
	if a, ok := fsys.spool.GetAttr("d/" + string(n.ID)); ok {
		d.attr = attrFrom(a)
	}
	return d
}

// Ino is the directory's inode number.
func (d *Dir) Ino() uint64 { return d.ino }

// Path is the directory's path in the mount ("/" for the root).
func (d *Dir) Path() string {
	d.fsys.treeMu.RLock()
	defer d.fsys.treeMu.RUnlock()
	if d.parent == nil {
		return "/"
	}
	var parts []string
	for x := d; x.parent != nil; x = x.parent {
		parts = append(parts, x.name)
	}
	p := ""
	for i := len(parts) - 1; i >= 0; i-- {
		p += "/" + parts[i]
	}
	return p
}

func (d *Dir) setPlace(parent *Dir, name string) {
	d.fsys.treeMu.Lock()
	d.parent, d.name = parent, name
	d.fsys.treeMu.Unlock()
}

// Attr is what stat shows.
func (d *Dir) Attr() Attr {
	d.amu.Lock()
	defer d.amu.Unlock()
	a := Attr{Mode: syscall.S_IFDIR, Nlink: 2, Size: 4096}
	mtime := d.node.ModTime
	if mtime.IsZero() {
		// A folder the repository gives no time (a view, a cabinet, a
		// folder in an Invenio record): the epoch, not year 1, and the
		// same at every mount, so that rsync from it stays stable.
		mtime = time.Unix(0, 0)
	}
	d.attr.fill(&a, 0o755, mtime, d.fsys.opts.UID, d.fsys.opts.GID)
	return a
}

// Setattr changes the mode, owner or times (kept locally).
func (d *Dir) Setattr(ctx context.Context, in SetAttr) (Attr, error) {
	if d.fsys.opts.ReadOnly {
		return Attr{}, syscall.EROFS
	}
	if cur := d.Attr(); mayChown(ctx, in, cur.UID, cur.GID) != nil {
		return Attr{}, syscall.EPERM
	}
	d.amu.Lock()
	d.attr.apply(in, d.fsys.opts.UID, d.fsys.opts.GID)
	a := d.attr
	d.amu.Unlock()
	_ = d.fsys.spool.SetAttr("d/"+string(d.id), a.record(""))
	return d.Attr(), nil
}

// touch records a change of the directory's entries.
func (d *Dir) touch() {
	d.amu.Lock()
	defer d.amu.Unlock()
	if !d.attr.mtime.IsZero() {
		d.attr.mtime = d.fsys.now()
		_ = d.fsys.spool.SetAttr("d/"+string(d.id), d.attr.record(""))
	}
}

// changed notes a change of this mount to the directory (mu held).
func (d *Dir) changed() {
	d.gen++
	d.treeDirty = true
}

// drop forgets what was shown under name: it is gone from the server (mu
// is taken).
func (d *Dir) drop(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.entries != nil {
		delete(d.entries, name)
	}
	delete(d.kids, name)
	d.changed()
}

// fresh tells whether the listing may be used as it is (mu held).
func (d *Dir) fresh() bool {
	if d.entries == nil || d.stale.Load() || d.volatile {
		return false
	}
	return d.fsys.now().Sub(d.listed) < d.fsys.opts.DirCacheTime || d.fsys.vouches(d.listed)
}

// listCall is a listing under way; callers that need one while it runs
// wait for it instead of asking the server again.
type listCall struct {
	done chan struct{}
	err  error // set before done is closed
}

// refresh lists the directory again when the listing is older than
// DirCacheTime or stale. It takes mu itself and releases it for the
// repository call. Concurrent callers share one listing.
func (d *Dir) refresh(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		d.mu.Lock()
		if d.fresh() {
			d.mu.Unlock()
			return nil
		}
		if d.gone {
			d.entries, d.listed = map[string]remote.Node{}, d.fsys.now()
			d.mu.Unlock()
			return nil
		}
		if call := d.inflight; call != nil {
			d.mu.Unlock()
			select {
			case <-call.done:
			case <-ctx.Done():
				return ctx.Err()
			}
			// Its listing may not have been applied (a change of this
			// mount overtook it): look again. Its caller's interrupt is
			// not ours.
			if call.err != nil && !errors.Is(call.err, context.Canceled) && !errors.Is(call.err, context.DeadlineExceeded) {
				return call.err
			}
			continue
		}
		call := &listCall{done: make(chan struct{})}
		d.inflight = call
		gen := d.gen
		d.mu.Unlock()
		d.stale.Store(false)
		since := d.fsys.seq.Add(1)
		entries, node, err := d.fetch(ctx)
		d.mu.Lock()
		d.inflight = nil
		if err != nil && errors.Is(err, remote.ErrUnavailable) {
			if d.entries == nil {
				d.entries, d.listed = d.fsys.lastKnown(d)
			}
			if d.entries != nil {
				close(call.done)
				d.mu.Unlock()
				return nil // offline: the last known listing, whatever its age
			}
		}
		call.err = err
		close(call.done)
		if err != nil {
			d.mu.Unlock()
			return err
		}
		if d.gen != gen && attempt < 2 {
			// This mount changed the directory while the listing was
			// under way: it may predate the change.
			d.mu.Unlock()
			d.stale.Store(true)
			continue
		}
		d.apply(entries, node, since)
		d.mu.Unlock()
		return nil
	}
}

// fetch asks the repository for the directory's entries.
func (d *Dir) fetch(ctx context.Context) (map[string]remote.Node, *remote.Node, error) {
	if d.doc != nil {
		n, err := d.fsys.repo.Stat(ctx, d.id)
		if err != nil {
			return nil, nil, err
		}
		entries := make(map[string]remote.Node, len(n.Files))
		for _, f := range n.Files {
			entries[Escape(f.Name)] = remote.Node{ID: n.ID, Parent: n.Parent, Kind: remote.KindDocument,
				Name: f.Name, Token: n.Token, ModTime: f.ModTime, Files: []remote.File{f}}
		}
		return entries, &n, nil
	}
	if d.search != nil {
		return d.searchFetch(ctx)
	}
	nodes, err := d.fsys.repo.List(ctx, d.id)
	if err != nil {
		return nil, nil, err
	}
	return MountNames(nodes), nil, nil
}

// apply takes a new listing, begun at sequence number since (mu held).
func (d *Dir) apply(entries map[string]remote.Node, node *remote.Node, since uint64) {
	if node != nil {
		d.doc.setToken(node.Token)
		d.amu.Lock()
		d.node = *node
		d.amu.Unlock()
	}
	d.entries, d.listed, d.listedSeq = entries, d.fsys.now(), since
	d.keepListing()
	for name, f := range d.local {
		n, ok := entries[name]
		f.mu.Lock()
		same := ok && !(n.IsDir() && d.doc == nil) && f.shows(n.ID, n.Files[0].Name, d.doc != nil) && !f.temp
		// A clean file this mount uploaded before the listing began, and
		// which the listing lacks (or shows another document under its
		// name), was renamed or deleted on the server.
		moved := !same && f.onServer() && !f.dirty && !f.busy && f.changed < since
		f.mu.Unlock()
		if same {
			delete(d.local, name) // the listing shows it now
			d.kids[name] = f
		}
		if moved {
			delete(d.local, name)
		}
	}
	for name, ch := range d.kids {
		n, ok := entries[name]
		if !ok {
			_, isLocal := d.local[name]
			_, isView := d.views[name]
			if !isLocal && !isView {
				delete(d.kids, name) // gone on the server
			}
			continue
		}
		if _, overlaid := d.local[name]; !overlaid {
			if !d.update(ch, n, since) {
				delete(d.kids, name) // another object under the name now
			}
		}
	}
}

// update gives a live child the state of a listing begun at since (mu
// held); false if the child does not show node n. since 0 only checks.
func (d *Dir) update(ch Node, n remote.Node, since uint64) bool {
	switch op := ch.(type) {
	case *File:
		if n.IsDir() && d.doc == nil {
			return false
		}
		op.mu.Lock()
		defer op.mu.Unlock()
		if !op.shows(n.ID, n.Files[0].Name, d.doc != nil) || op.temp {
			return false
		}
		if since > 0 {
			op.refresh(n, since)
		}
	case *Dir:
		if op.id != n.ID || !n.IsDir() {
			return false
		}
		if since > 0 {
			op.amu.Lock()
			op.node = n
			op.amu.Unlock()
			if op.doc != nil {
				op.doc.setToken(n.Token)
			}
		}
	}
	return true
}

// childFor returns the node showing n under name, reusing a live one (mu
// held).
func (d *Dir) childFor(name string, n remote.Node) Node {
	if ch := d.kids[name]; ch != nil && d.update(ch, n, 0) {
		return ch
	}
	var ch Node
	switch {
	case d.doc != nil:
		ch = newRemoteFile(d.fsys, d, name, d.doc, n.Files[0], true, remote.Node{}) // fields are the document's
	case n.IsDir():
		var doc *docRef
		if n.Kind == remote.KindDocument {
			doc = newDocRef(n)
		}
		sub := newDir(d.fsys, n, doc)
		sub.setPlace(d, name)
		// A hidden view's folders that hold no documents list what
		// changes below them (the records that have attachments): they
		// are listed again at each use.
		_, isView := d.views[name]
		sub.volatile = (isView || d.volatile) && n.NoDocuments
		ch = sub
	default:
		ch = newRemoteFile(d.fsys, d, name, newDocRef(n), n.Files[0], false, n)
	}
	d.kids[name] = ch
	return ch
}

// isTemp tells whether a file of this name stays local.
func (d *Dir) isTemp(ctx context.Context, name string) bool {
	return d.fsys.temps.IsTempBeside(name, func(target string) bool {
		ch, err := d.child(ctx, target)
		return err == nil && ch != nil
	})
}

// child finds the node shown under name; nil if there is none. It lists
// the directory first when the listing is not fresh.
func (d *Dir) child(ctx context.Context, name string) (Node, error) {
	if err := d.refresh(ctx); err != nil {
		return nil, err
	}
	d.mu.Lock()
	ch := d.childLocked(name)
	d.mu.Unlock()
	if ch == nil {
		return d.view(ctx, name)
	}
	return ch, nil
}

// cachedChild is child on the listing as it is, without asking; an
// error if there is no listing yet.
func (d *Dir) cachedChild(name string) (Node, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.entries == nil {
		return nil, errNoListing
	}
	return d.childLocked(name), nil
}

// errNoListing: the directory was never listed.
var errNoListing = errors.New("not listed yet")

// childLocked is child on the listing as it is (mu held).
func (d *Dir) childLocked(name string) Node {
	if f, ok := d.local[name]; ok {
		return f
	}
	if d.hidden[name] != nil || d.unlinked[name] != nil {
		return nil
	}
	n, ok := d.entries[name]
	if !ok {
		if n, ok = d.views[name]; !ok {
			return nil
		}
	}
	return d.childFor(name, n)
}

// view looks name up among the repository's hidden views of the directory
// (remote.Hidden: Axelor's /.attachments), which no listing shows; nil if
// there is none. Found views are kept: they are no listing's.
func (d *Dir) view(ctx context.Context, name string) (Node, error) {
	h, ok := remote.As[remote.Hidden](d.fsys.repo)
	if !ok || d.doc != nil {
		return nil, nil
	}
	n, err := h.LookupHidden(ctx, d.id, name)
	if errors.Is(err, remote.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.views == nil {
		d.views = map[string]remote.Node{}
	}
	d.views[name] = n
	return d.childFor(name, n), nil
}

// Lookup finds name in the directory: syscall.ENOENT if there is none.
func (d *Dir) Lookup(ctx context.Context, name string) (Node, error) {
	if name == versions.Dir && d.fsys.caps.Versions && d.search == nil {
		return d.versionsNode(), nil
	}
	if name == SearchDir && d.search == nil && d.doc == nil {
		if sd := d.searchRoot(); sd != nil {
			return sd, nil
		}
	}
	if name == RenditionsDir {
		if rd := d.renditionsNode(); rd != nil {
			return rd, nil
		}
	}
	if d.search != nil && d.search.root {
		return d.queryDir(ctx, name)
	}
	ch, err := d.child(ctx, name)
	if err != nil {
		return nil, d.fsys.fail("lookup", join(d.Path(), name), err)
	}
	if ch == nil {
		return nil, syscall.ENOENT
	}
	return ch, nil
}

// Readdir lists the directory, sorted.
func (d *Dir) Readdir(ctx context.Context) ([]DirEntry, error) {
	list, _, err := d.listing(ctx, false)
	return list, err
}

// Listing lists the directory for an opendir. keepCache says the kernel
// may keep the listing in its readdir cache (FOPEN_CACHE_DIR) while it is
// unchanged, so that a warm ls -lR or rsync asks nothing. The kernel drops
// its copy itself after changes made through it; a listing that changed
// otherwise (on the server, or by an upload finishing) is given without
// keepCache once, which makes the kernel drop the stale copy, and cached
// again from the next open.
func (d *Dir) Listing(ctx context.Context) ([]DirEntry, bool, error) {
	return d.listing(ctx, true)
}

func (d *Dir) listing(ctx context.Context, forKernel bool) ([]DirEntry, bool, error) {
	if err := d.refresh(ctx); err != nil {
		return nil, false, d.fsys.fail("readdir", d.Path(), err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	dirs := make(map[string]bool, len(d.entries)+len(d.local)+1)
	for name, n := range d.entries {
		if d.hidden[name] != nil || d.unlinked[name] != nil {
			continue
		}
		dirs[name] = n.IsDir() && d.doc == nil
	}
	for name := range d.local {
		dirs[name] = false
	}
	if d.fsys.opts.ShowVersions && d.fsys.caps.Versions {
		dirs[versions.Dir] = true
	}
	if d.fsys.opts.ShowVersions && d.search == nil && d.doc == nil {
		if _, ok := remote.As[remote.Searcher](d.fsys.repo); ok {
			dirs[SearchDir] = true
		}
		if _, ok := remote.As[remote.Renditioner](d.fsys.repo); ok {
			dirs[RenditionsDir] = true
		}
	}
	if d.fsys.opts.ShowVersions {
		if h, ok := remote.As[remote.Hidden](d.fsys.repo); ok {
			for _, name := range h.HiddenNames(d.id) {
				dirs[name] = true
			}
		}
	}
	list := make([]DirEntry, 0, len(dirs))
	for name, dir := range dirs {
		list = append(list, DirEntry{Name: name, Dir: dir})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	if !forKernel {
		return list, false, nil
	}
	d.prefetchSubfolders()
	h := fnv.New64a()
	for _, e := range list {
		h.Write([]byte(e.Name))
		if e.Dir {
			h.Write([]byte{0, 1})
		} else {
			h.Write([]byte{0, 0})
		}
	}
	sum := h.Sum64() | 1 // never 0, which means the kernel holds nothing
	keep := d.kernelList == 0 || d.kernelList == sum
	if keep {
		d.kernelList = sum
	} else {
		d.kernelList = 0
	}
	return list, keep, nil
}

// Small files ahead: a program that reads a directory's files in order
// (rsync, cp -r, tar) would wait a round trip for each. When a file is
// first read, the next files of its directory by name are fetched into
// the block cache in parallel, at most PrefetchFiles files of at most
// aheadFileSize bytes each.
const aheadFileSize = 4 << 20

// readAhead fetches the files after name into the block cache in the
// background (takes mu).
func (d *Dir) readAhead(name string) {
	d.mu.Lock()
	if len(d.entries) > 20000 || d.doc != nil {
		d.mu.Unlock()
		return
	}
	// The names after this one, from a sorted list kept per listing: a
	// sort per file read made reading a folder's files quadratic.
	if of := (namesOf{d.listed, d.gen, len(d.entries)}); d.aheadNames == nil || d.aheadOf != of {
		d.aheadNames = slices.Sorted(maps.Keys(d.entries))
		d.aheadOf = of
	}
	i, found := slices.BinarySearch(d.aheadNames, name)
	if found {
		i++
	}
	var files []*File
	for _, n := range d.aheadNames[i:] {
		if len(files) == cap(d.fsys.aheadFiles) {
			break
		}
		e, ok := d.entries[n]
		if !ok || e.IsDir() || len(e.Files) != 1 || e.Files[0].Size > aheadFileSize {
			continue
		}
		// The node shown under the name, as a lookup finds it: a file
		// saved by rename since the listing began is shown from d.local,
		// and a node made of the listing's entry would fetch the new
		// bytes under the old content's key.
		if ch, ok := d.childLocked(n).(*File); ok {
			files = append(files, ch)
		}
	}
	d.mu.Unlock()
	for _, ch := range files {
		ch.mu.Lock()
		if ch.doc == nil || !ch.exists || ch.local != nil || ch.rf.Size == 0 {
			ch.mu.Unlock()
			continue
		}
		key, size, fetch := ch.contentKey(), ch.rf.Size, ch.fetcher()
		ch.mu.Unlock()
		select {
		case d.fsys.aheadFiles <- struct{}{}:
		default:
			return // enough under way
		}
		go func() {
			defer func() { <-d.fsys.aheadFiles }()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			d.fsys.blocks.Warm(ctx, key, size, fetch)
		}()
	}
}

// prefetchSubfolders lists the subfolders not listed yet in the
// background, a few at a time (mu held; the listings run without it): a
// program that reads a directory is about to walk into them (ls -lR,
// find, rsync, cp -r), and on a network each listing is a round trip that
// would otherwise come one after the other.
func (d *Dir) prefetchSubfolders() {
	if d.doc != nil || cap(d.fsys.prefetch) == 0 || !d.fsys.Offline().IsZero() {
		return
	}
	var names []string
	for name, n := range d.entries {
		if n.IsDir() && d.hidden[name] == nil && d.unlinked[name] == nil {
			names = append(names, name)
		}
	}
	// In name order: walkers (ls -R, rsync, find over a sorted readdir)
	// enter the subfolders in that order, and the first ones they wait
	// for are then asked for first, not wherever the map put them.
	slices.Sort(names)
	var subs []*Dir
	for _, name := range names {
		if sub, ok := d.childFor(name, d.entries[name]).(*Dir); ok {
			subs = append(subs, sub)
		}
	}
	if len(subs) > 0 {
		go d.fsys.listAhead(subs)
	}
}

// listAhead lists directories nobody listed yet, at most cap(prefetch)
// at a time across the mount; the rest wait their turn.
func (f *FS) listAhead(dirs []*Dir) {
	for _, sub := range dirs {
		sub.mu.Lock()
		need := sub.entries == nil && sub.inflight == nil
		sub.mu.Unlock()
		if !need {
			continue
		}
		select {
		case f.prefetch <- struct{}{}:
		case <-f.stop:
			return
		}
		go func() {
			defer func() { <-f.prefetch }()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := sub.refresh(ctx); err != nil {
				f.log.Debug("listing a subfolder ahead failed; it is listed when used", "path", sub.Path(), "err", err)
			}
		}()
	}
}

// namesake finds a document of the given name that a listing begun after
// sequence number seq shows. The listing kept does if it began after seq;
// else a probe: a listing fetched for this question alone, shared by the
// uploads it began after, and begun beside others under way rather than
// after them. It is not applied: a cp creating files here would have it
// discarded (it may predate their creates) and taken again, in series.
func (d *Dir) namesake(ctx context.Context, name string, seq uint64) (remote.Node, bool, error) {
	found := func(entries map[string]remote.Node) (remote.Node, bool, error) {
		n, ok := entries[name]
		if !ok || n.IsDir() || len(n.Files) != 1 {
			return remote.Node{}, false, nil
		}
		return n, true, nil
	}
	d.mu.Lock()
	if d.entries != nil && d.listedSeq > seq {
		defer d.mu.Unlock()
		return found(d.entries)
	}
	if p := d.lastProbe; p != nil && p.seq > seq {
		defer d.mu.Unlock()
		return found(p.entries)
	}
	var p *nameProbe
	for _, q := range d.probes {
		if q.seq > seq && (p == nil || q.seq < p.seq) {
			p = q
		}
	}
	if p != nil {
		d.mu.Unlock()
		select {
		case <-p.done:
		case <-ctx.Done():
			return remote.Node{}, false, ctx.Err()
		}
		if p.err != nil {
			return remote.Node{}, false, p.err
		}
		return found(p.entries)
	}
	p = &nameProbe{seq: d.fsys.seq.Add(1), done: make(chan struct{})}
	d.probes = append(d.probes, p)
	d.mu.Unlock()
	p.entries, _, p.err = d.fetch(ctx)
	d.mu.Lock()
	close(p.done)
	d.probes = slices.DeleteFunc(d.probes, func(q *nameProbe) bool { return q == p })
	// The newest done one answers whatever an older one would.
	if p.err == nil && (d.lastProbe == nil || p.seq > d.lastProbe.seq) {
		d.lastProbe = p
	}
	d.mu.Unlock()
	if p.err != nil {
		return remote.Node{}, false, p.err
	}
	return found(p.entries)
}

// namesOf tells a listing apart from the next: when it was received,
// the changes made to it since, and its size.
type namesOf struct {
	listed time.Time
	gen    uint64
	n      int
}

// nameProbe is a listing fetched to answer namesake.
type nameProbe struct {
	seq     uint64        // fsys.seq when it began
	done    chan struct{} // closed once entries and err are set
	entries map[string]remote.Node
	err     error
}

// Mkdir creates a folder.
func (d *Dir) Mkdir(ctx context.Context, name string, mode uint32) (*Dir, error) {
	if d.fsys.opts.ReadOnly || d.search != nil {
		return nil, syscall.EROFS
	}
	if d.doc != nil || name == versions.Dir || name == RenditionsDir {
		return nil, syscall.EPERM // documents hold files, not folders
	}
	ctx, cancel := opContext(ctx)
	defer cancel()
	d.nsMu.Lock()
	defer d.nsMu.Unlock()
	p := join(d.Path(), name)
	if ch, err := d.child(ctx, name); err != nil || ch != nil {
		if err != nil {
			return nil, d.fsys.fail("mkdir", p, err)
		}
		return nil, syscall.EEXIST
	}
	n, err := d.fsys.repo.Mkdir(ctx, d.id, Unescape(name))
	if err != nil {
		return nil, d.fsys.fail("mkdir", p, err)
	}
	sub := newDir(d.fsys, n, nil)
	sub.setPlace(d, name)
	// Empty as made: a create in it with write-back asks nothing (cp -r
	// waited a round trip for the new folder's listing). The listing
	// begins now, so the uploads of those creates still look for a
	// namesake another client put there meanwhile.
	sub.entries, sub.listed, sub.listedSeq = map[string]remote.Node{}, d.fsys.now(), d.fsys.seq.Load()
	d.fsys.ownNew(ctx, &sub.attr)
	if mode&0o7777 != 0o755 {
		sub.attr.mode = mode & 0o7777
	}
	if sub.attr != (localAttr{}) {
		_ = d.fsys.spool.SetAttr("d/"+string(sub.id), sub.attr.record(""))
	}
	d.mu.Lock()
	if d.entries != nil {
		d.entries[name] = n
	}
	d.kids[name] = sub
	d.changed()
	d.mu.Unlock()
	d.touch()
	return sub, nil
}

// Create creates and opens a file. A name the cached listing lacks is
// looked up on the server first: a document another client created
// meanwhile is opened (O_EXCL: EEXIST), never duplicated.
func (d *Dir) Create(ctx context.Context, name string, flags, mode uint32) (*File, *Handle, error) {
	if d.fsys.opts.ReadOnly || (d.search != nil && !d.searchTemp(ctx, name)) {
		return nil, nil, syscall.EROFS
	}
	if name == versions.Dir || name == RenditionsDir {
		return nil, nil, syscall.EPERM
	}
	ctx, cancel := opContext(ctx)
	defer cancel()
	d.nsMu.Lock()
	defer d.nsMu.Unlock()
	p := join(d.Path(), name)
	temp := d.isTemp(ctx, name)
	// With write-back the cached listing is trusted, whatever its age,
	// and the upload looks for a document of the name (File.unchecked):
	// cp of many files then returns at spool speed, not waiting for the
	// listings the uploads beside it take. Otherwise the create asks,
	// since close promises the server's state.
	writeBack := d.fsys.opts.WriteBack > 0 && d.doc == nil
	var ch Node
	err := errNoListing
	if writeBack {
		ch, err = d.cachedChild(name)
	}
	if err != nil {
		ch, err = d.child(ctx, name)
	}
	if err == nil && ch == nil && !temp && !writeBack {
		d.stale.Store(true) // the cached listing may be older than a document of this name
		ch, err = d.child(ctx, name)
	}
	if err != nil {
		return nil, nil, d.fsys.fail("create", p, err)
	}
	d.mu.Lock()
	gone := d.gone
	d.mu.Unlock()
	if gone {
		return nil, nil, syscall.ENOENT
	}
	if ch != nil {
		ef, ok := ch.(*File)
		if flags&syscall.O_EXCL != 0 || !ok {
			return nil, nil, syscall.EEXIST
		}
		h, _, err := ef.Open(ctx, flags)
		return ef, h, err
	}
	f := newFile(d.fsys, d, name)
	f.temp = temp
	if writeBack && !temp {
		f.unchecked = d.fsys.seq.Add(1)
	}
	d.amu.Lock()
	noDocs := d.node.NoDocuments
	d.amu.Unlock()
	if noDocs && !f.temp {
		return nil, nil, syscall.EACCES
	}
	if d.doc != nil {
		f.doc, f.multi = d.doc, true
	}
	if !f.temp {
		// A new file where a document was moved aside (vim's save) or
		// unlinked a moment ago (install): it becomes the document's next
		// version.
		id, ok, err := d.takeBack(ctx, name)
		if err != nil {
			return nil, nil, d.fsys.fail("create", p, err)
		}
		if ok {
			f.doc, f.rf, f.exists, f.multi = id.doc, id.rf, true, id.multi
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.ensureLocal(ctx, true); err != nil {
		return nil, nil, d.fsys.fail("create", p, err)
	}
	if f.exists {
		f.setBase(f.rf.ContentID)
	}
	f.dirty = true // even an empty new file becomes a document
	if mode&0o7777 != 0o644 {
		f.attr.mode = mode & 0o7777
	}
	d.fsys.ownNew(ctx, &f.attr)
	f.setMtimeNow()
	d.mu.Lock()
	d.local[name] = f
	d.changed()
	d.mu.Unlock()
	h := f.openLocked(flags)
	d.touch()
	return f, h, nil
}

// mknodGrace is how long a file made by mknod waits for its content before
// it is saved empty.
const mknodGrace = 2 * time.Second

// Mknod makes a regular file without opening it: GNU tar --xattrs does so
// to set a file's attributes before its content. The content a writer
// then puts in is saved by its close, as for a created file; a file that
// gets none is saved empty after mknodGrace (or the write-back delay),
// so that a save stays one version.
func (d *Dir) Mknod(ctx context.Context, name string, mode uint32) (*File, error) {
	if mode&syscall.S_IFMT != syscall.S_IFREG && mode&syscall.S_IFMT != 0 {
		return nil, d.Refuse("mknod", name, "pipes, sockets or devices")
	}
	f, h, err := d.Create(ctx, name, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL, mode&0o7777)
	if err != nil {
		return nil, err
	}
	h.released.Store(true)
	f.fsys.closed(h)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opens--
	f.writers--
	if f.temp {
		return f, nil
	}
	if err := f.commit(); err != nil {
		return nil, d.fsys.fail("mknod", f.path(), err)
	}
	f.fsys.queue.Schedule(f, f.path(), 0, max(mknodGrace, f.fsys.opts.WriteBack))
	return f, nil
}

// takeBack returns the identity of a document moved aside or unlinked a
// moment ago under name, for a new file of that name to take over (nsMu
// held).
func (d *Dir) takeBack(ctx context.Context, name string) (identity, bool, error) {
	d.mu.Lock()
	sh, un := d.hidden[name], d.unlinked[name]
	d.mu.Unlock()
	switch {
	case sh != nil:
		sh.mu.Lock()
		id := identity{sh.doc, sh.rf, sh.multi}
		err := sh.materialize(ctx)
		sh.mu.Unlock()
		if err != nil {
			return identity{}, false, err
		}
		d.mu.Lock()
		delete(d.hidden, name)
		d.changed()
		d.mu.Unlock()
		return id, true, nil
	case un != nil:
		d.fsys.queue.Cancel(un)
		d.mu.Lock()
		delete(d.unlinked, name)
		d.changed()
		d.mu.Unlock()
		return un.id, true, nil
	}
	return identity{}, false, nil
}

// existingChild finds the child an unlink or rmdir removes: ENOENT if
// there is none.
func (d *Dir) existingChild(ctx context.Context, op, name string) (Node, error) {
	ch, err := d.child(ctx, name)
	if err != nil {
		return nil, d.fsys.fail(op, join(d.Path(), name), err)
	}
	if ch == nil {
		return nil, syscall.ENOENT
	}
	return ch, nil
}

// Unlink removes a file. A document with no open handle is deleted on the
// server after UnlinkGrace, hidden until then: a new file of the same name
// before that (install's unlink and create, Alfresco's "shuffle") is its
// next version instead of a new document.
func (d *Dir) Unlink(ctx context.Context, name string) error {
	if d.fsys.opts.ReadOnly || (d.search != nil && !d.searchLocal(name)) {
		return syscall.EROFS
	}
	ctx, cancel := opContext(ctx)
	defer cancel()
	d.nsMu.Lock()
	defer d.nsMu.Unlock()
	p := join(d.Path(), name)
	ch, err := d.existingChild(ctx, "unlink", name)
	if err != nil {
		return err
	}
	f, ok := ch.(*File)
	if !ok {
		return syscall.EISDIR
	}
	f.settle(ctx) // a lost create's document goes as any other
	f.mu.Lock()
	f.idle()
	shadowName, shadow := f.shadowName, f.shadowDir != nil
	id, onServer := f.identity()
	onServer = onServer && (shadow || !f.temp)
	deferred := onServer && !shadow && !id.multi
	d.fsys.log.Debug("unlink", "path", p, "on_server", onServer, "deferred", deferred)
	f.forget(ctx)
	f.mu.Unlock()
	if onServer && !deferred {
		if err := d.fsys.deleteIdentity(ctx, id); err != nil {
			return d.fsys.fail("unlink", p, err)
		}
	}
	d.mu.Lock()
	if deferred {
		it := &unlinkItem{dir: d, name: name, id: id, path: p}
		d.unlinked[name] = it
		d.fsys.queue.Schedule(it, p, 0, d.fsys.opts.UnlinkGrace)
	}
	if shadowName != "" {
		delete(d.hidden, shadowName)
		if d.entries != nil {
			delete(d.entries, shadowName)
		}
		delete(d.kids, shadowName)
	}
	delete(d.local, name)
	delete(d.kids, name)
	if !deferred && d.entries != nil {
		delete(d.entries, name)
	}
	d.changed()
	if d.doc != nil && len(d.entries) == 0 && len(d.local) == 0 {
		d.gone = true // the last file took the document with it
	}
	d.mu.Unlock()
	d.touch()
	return nil
}

// unlinkItem is the deferred deletion of an unlinked document; the upload
// queue runs it.
type unlinkItem struct {
	dir  *Dir
	name string
	id   identity
	path string
	// mu is held by Upload: the queue's run, when the grace fell due,
	// and an rmdir's (flushUnlinked) delete the document once between
	// them.
	mu sync.Mutex
}

// Upload deletes the document, unless a new file took it over meanwhile
// or the item's other run deleted it.
func (u *unlinkItem) Upload(ctx context.Context) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	d := u.dir
	d.mu.Lock()
	mine := d.unlinked[u.name] == u
	d.mu.Unlock()
	if !mine {
		return nil
	}
	if err := d.fsys.deleteIdentity(ctx, u.id); err != nil {
		return fmt.Errorf("delete %s: %w", u.path, err)
	}
	d.mu.Lock()
	if d.unlinked[u.name] == u {
		delete(d.unlinked, u.name)
		if d.entries != nil && d.entries[u.name].ID == u.id.doc.id {
			delete(d.entries, u.name)
		}
		d.changed()
	}
	d.mu.Unlock()
	return nil
}

// flushUnlinked deletes the documents unlinked here now, instead of after
// the grace.
func (d *Dir) flushUnlinked(ctx context.Context) error {
	d.mu.Lock()
	items := make([]*unlinkItem, 0, len(d.unlinked))
	for _, it := range d.unlinked {
		items = append(items, it)
	}
	d.mu.Unlock()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(flushParallel)
	for _, it := range items {
		d.fsys.queue.Cancel(it)
		g.Go(func() error { return it.Upload(gctx) })
	}
	return g.Wait()
}

// flushParallel is how many deletes an rmdir sends at once (rm -rf of a
// big folder on a far server).
const flushParallel = 8

// Rmdir removes an empty directory.
func (d *Dir) Rmdir(ctx context.Context, name string) error {
	if d.fsys.opts.ReadOnly || d.search != nil {
		return syscall.EROFS
	}
	ctx, cancel := opContext(ctx)
	defer cancel()
	d.nsMu.Lock()
	defer d.nsMu.Unlock()
	ch, err := d.existingChild(ctx, "rmdir", name)
	if err != nil {
		return err
	}
	sub, ok := ch.(*Dir)
	if !ok {
		return syscall.ENOTDIR
	}
	if err := sub.removeFromServer(ctx); err != nil {
		return err
	}
	d.drop(name)
	d.touch()
	return nil
}

// removeFromServer deletes an empty directory. Its own nsMu is not taken
// (that would mix tree order with lockDirs' inode order); the kernel keeps
// the directory being removed locked against creates in it.
func (d *Dir) removeFromServer(ctx context.Context) error {
	if err := d.refresh(ctx); err != nil { // drops local files others deleted
		return d.fsys.fail("rmdir", d.Path(), err)
	}
	d.mu.Lock()
	gone, local := d.gone, len(d.local)
	d.mu.Unlock()
	if gone {
		return nil
	}
	if local > 0 {
		return syscall.ENOTEMPTY
	}
	if d.doc != nil {
		// A document directory goes when its last file is unlinked.
		n, err := d.fsys.repo.Stat(ctx, d.id)
		if err == nil && len(n.Files) > 0 {
			return syscall.ENOTEMPTY
		}
		d.markGone()
		return nil
	}
	// The unlinked documents before the listing: one whose deferred
	// delete ends between the two is then in the first or not in the
	// listing (the other way round it was in neither, and the folder
	// seemed not empty).
	d.mu.Lock()
	unlinked := map[remote.ID]bool{}
	for _, it := range d.unlinked {
		unlinked[it.id.doc.id] = true
	}
	d.mu.Unlock()
	kids, err := d.fsys.repo.List(ctx, d.id)
	if err != nil {
		return d.fsys.fail("rmdir", d.Path(), err)
	}
	for _, k := range kids {
		if !unlinked[k.ID] {
			return syscall.ENOTEMPTY
		}
	}
	// Empty but for documents unlinked a moment ago: they go now.
	if err := d.flushUnlinked(ctx); err != nil {
		return d.fsys.fail("rmdir", d.Path(), err)
	}
	d.amu.Lock()
	ref := &docRef{id: d.id, token: d.node.Token}
	d.amu.Unlock()
	_, err = retryConflict(ctx, d.fsys.repo, ref, func(tok string) (remote.Node, error) {
		return remote.Node{}, d.fsys.repo.Delete(ctx, d.id, tok)
	})
	if err = ignoreNotFound(err); err != nil {
		return d.fsys.fail("rmdir", d.Path(), err)
	}
	d.markGone()
	d.fsys.spool.DeleteAttr("d/" + string(d.id))
	return nil
}

func (d *Dir) markGone() {
	d.mu.Lock()
	d.gone = true
	d.entries, d.kids = map[string]remote.Node{}, map[string]Node{}
	d.changed()
	d.mu.Unlock()
}

// lockDirs takes the nsMu of a and b (once if they are one), in inode
// order, and returns the unlock.
func lockDirs(a, b *Dir) func() {
	if a == b {
		a.nsMu.Lock()
		return a.nsMu.Unlock
	}
	first, second := a, b
	if b.ino < a.ino {
		first, second = b, a
	}
	first.nsMu.Lock()
	second.nsMu.Lock()
	return func() { second.nsMu.Unlock(); first.nsMu.Unlock() }
}

// Statfs is the spool disk's: it bounds what can be written before it is
// uploaded.
func (f *FS) Statfs() (syscall.Statfs_t, error) {
	var st syscall.Statfs_t
	err := syscall.Statfs(f.spool.Dir(), &st)
	return st, err
}
