package core

import (
	"context"
	"errors"
	"syscall"

	"github.com/dmsfs/dmsfs/remote"
)

// Search views: dir/.search/<query>/ holds the documents below dir that
// the repository finds for query (remote.Searcher; the syntax is the
// backend's). .search is hidden like .versions, any name in it is a
// query, and a query's directory lists its results as documents: reading
// and saving into them work (a save is a new version of the document
// found), creating, removing and renaming names there is EROFS. Results
// are cached like listings (DirCacheTime).
//
// Except for temp files (TempPatterns): a saving program keeps its lock
// file and its temporary copy beside the document (LibreOffice's
// .~lock.x# and lu*.tmp), and renames the copy over it. Those names may
// be made, written, renamed among themselves and removed in a query's
// directory; they stay local, and one renamed over a result saves that
// document (a new version of it).

// SearchDir is the name of a directory's search view.
const SearchDir = ".search"

// searchSpec is what a search view's directory searches.
type searchSpec struct {
	under remote.ID // the folder searched below
	query string    // "" in .search itself
	root  bool      // .search itself: any name is a query
	// lastErr is why the repository rejected the last query that failed
	// (.search itself; its user.dms.error). Guarded by the Dir's mu.
	lastErr string
}

// searchTemp tells whether name is a temp file that d, a query's
// directory, may hold (see above).
func (d *Dir) searchTemp(ctx context.Context, name string) bool {
	return d.search != nil && !d.search.root && d.isTemp(ctx, name)
}

// searchLocal tells whether name in d, a query's directory, is a local
// temp file (which may be removed or renamed), not a result.
func (d *Dir) searchLocal(name string) bool {
	d.mu.Lock()
	f := d.local[name]
	d.mu.Unlock()
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.temp && f.doc == nil
}

// searchRoot is d's .search, nil where the repository cannot search.
func (d *Dir) searchRoot() *Dir {
	if _, ok := remote.As[remote.Searcher](d.fsys.repo); !ok {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.searchDir == nil {
		sd := newDir(d.fsys, remote.Node{Kind: remote.KindFolder, Name: SearchDir, NoDocuments: true}, nil)
		sd.setPlace(d, SearchDir)
		sd.search = &searchSpec{under: d.id, root: true}
		d.searchDir = sd
		d.fsys.searches.Add(1)
	}
	return d.searchDir
}

// queryDir is the directory of the results of query name in .search d
// (takes mu). The query runs at once: one the repository rejects is
// ENOENT, with its message logged.
func (d *Dir) queryDir(ctx context.Context, name string) (Node, error) {
	d.mu.Lock()
	if ch, ok := d.kids[name].(*Dir); ok {
		d.mu.Unlock()
		if err := ch.refresh(ctx); err != nil {
			return nil, ch.searchErr(err)
		}
		return ch, nil
	}
	qd := newDir(d.fsys, remote.Node{Kind: remote.KindFolder, Name: name, NoDocuments: true}, nil)
	qd.setPlace(d, name)
	qd.search = &searchSpec{under: d.search.under, query: Unescape(name)}
	d.mu.Unlock()
	if err := qd.refresh(ctx); err != nil {
		d.mu.Lock()
		d.search.lastErr = name + ": " + err.Error()
		d.mu.Unlock()
		return nil, qd.searchErr(err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if ch, ok := d.kids[name].(*Dir); ok {
		return ch, nil // a concurrent lookup made it first
	}
	d.kids[name] = qd
	return qd, nil
}

// searchErr is the errno of a failed search: a query the repository
// rejects does not exist (ENOENT; why is in the log).
func (d *Dir) searchErr(err error) error {
	if errors.Is(err, remote.ErrInvalidName) || errors.Is(err, remote.ErrNotFound) || errors.Is(err, remote.ErrRefused) {
		d.fsys.log.Warn("search: the repository rejects the query", "path", d.Path(), "err", err)
		return syscall.ENOENT
	}
	return d.fsys.fail("search", d.Path(), err)
}

// searchFetch runs the directory's query (.search itself lists nothing).
func (d *Dir) searchFetch(ctx context.Context) (map[string]remote.Node, *remote.Node, error) {
	if d.search.root {
		return map[string]remote.Node{}, nil, nil
	}
	s, ok := remote.As[remote.Searcher](d.fsys.repo)
	if !ok {
		return map[string]remote.Node{}, nil, nil
	}
	nodes, err := s.Search(ctx, d.search.under, d.search.query)
	if err != nil {
		return nil, nil, err
	}
	// Documents, and the folders a repository finds (Invenio's records).
	return MountNames(nodes), nil, nil
}

// otherViews shows a document's new state wherever else the mount shows
// it: a search result and the document in its folder are two files of
// one document, and a save through either changes both. Only while a
// search view exists (FS.searches); the directories concerned are listed
// again and the kernel told, as after a poll.
func (f *FS) otherViews(ctx context.Context, doc remote.ID, from *Dir) {
	if f.searches.Load() == 0 {
		return
	}
	dirs, _ := f.liveDirs()
	f.poll.mu.Lock()
	n := f.poll.notifier
	f.poll.mu.Unlock()
	for _, d := range dirs {
		if d == from {
			continue
		}
		d.mu.Lock()
		shows := false
		for _, e := range d.entries {
			if e.ID == doc {
				shows = true
				break
			}
		}
		var files []*File // not in a listing yet: made here
		for _, f := range d.local {
			files = append(files, f)
		}
		for _, k := range d.kids {
			if f, ok := k.(*File); ok {
				files = append(files, f)
			}
		}
		d.mu.Unlock()
		for _, f := range files {
			f.mu.Lock()
			shows = shows || f.doc != nil && f.doc.id == doc && !f.multi
			f.mu.Unlock()
		}
		if shows {
			d.revalidate(ctx, n)
		}
	}
}
