package core

import (
	"sync"

	"github.com/dmsfs/dmsfs/remote"
)

// edits tells a read of a document's current content whether its bytes may
// be taken for the content the file showed when the read was set up.
// Repositories read a document, not a content: a read set up before a save
// and run after it (a file fetched ahead, a stream begun late) gets the new
// bytes, and kept in the block cache under the old content's name they
// would show whenever the document holds that content again (a save that
// undoes one). So every change of a document's content this mount makes
// (at its start and its end) or sees in a listing is numbered, and a read
// that a change overlapped, or that was set up before one, is checked or
// not kept.
type edits struct {
	mu  sync.Mutex
	seq uint64 // the last number given out; guarded by mu
	// last is the number of each document's latest change; guarded by mu.
	// It is emptied when it grows past maxEdits: floor is then the seq of
	// that moment, and a read set up before it counts as overlapped.
	last  map[remote.ID]uint64
	floor uint64
}

const maxEdits = 1 << 16

// now is the number a read set up now compares with (since).
func (e *edits) now() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.seq
}

// changed notes a change of doc's content, begun, ended or seen.
func (e *edits) changed(doc remote.ID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.last) >= maxEdits {
		e.last, e.floor = nil, e.seq
	}
	if e.last == nil {
		e.last = map[remote.ID]uint64{}
	}
	e.seq++
	e.last[doc] = e.seq
}

// since tells whether doc's content changed after now() returned at.
func (e *edits) since(doc remote.ID, at uint64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return at < e.floor || e.last[doc] > at
}
