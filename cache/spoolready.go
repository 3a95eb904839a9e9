package cache

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"sync"
)

// readyFiles are empty data files made ahead of Spool.Create, in
// spool/temp (wiped at the next start), so that a create renames one
// instead of allocating an inode while the writer waits: on ext4 after
// many files were deleted (the spool's files of uploads just done) an
// allocation scans past every inode freed in the last half minute, and
// that was a quarter of the mount's CPU in a cp -r of small files.
type readyFiles struct {
	dir  string
	need chan struct{} // buffered 1: wakes the filler
	done chan struct{} // closed when the filler has ended

	mu     sync.Mutex // leaf; guards the fields below
	files  []readyFile
	closed bool
}

type readyFile struct {
	path string
	f    *os.File
}

// readyAhead is how many empty files wait.
const readyAhead = 32

func newReadyFiles(dir string) *readyFiles {
	r := &readyFiles{dir: dir, need: make(chan struct{}, 1), done: make(chan struct{})}
	go r.fill()
	r.wake()
	return r
}

// wake starts a round of the filler (r.mu held, or before it runs: the
// channel closes under r.mu).
func (r *readyFiles) wake() {
	select {
	case r.need <- struct{}{}:
	default:
	}
}

// take hands out a ready file, if one waits.
func (r *readyFiles) take() (readyFile, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return readyFile{}, false
	}
	if len(r.files) == 0 {
		r.wake()
		return readyFile{}, false
	}
	rf := r.files[len(r.files)-1]
	r.files = r.files[:len(r.files)-1]
	if len(r.files) < readyAhead/2 {
		r.wake()
	}
	return rf, true
}

// fill makes files until readyAhead wait, each time it is woken, and ends
// once closed. A file it cannot make ends the round: Create makes its own.
func (r *readyFiles) fill() {
	defer close(r.done)
	for range r.need {
		for {
			r.mu.Lock()
			closed, n := r.closed, len(r.files)
			r.mu.Unlock()
			if closed {
				return
			}
			if n >= readyAhead {
				break
			}
			b := make([]byte, 12)
			rand.Read(b)
			p := filepath.Join(r.dir, "ready-"+hex.EncodeToString(b))
			f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				break
			}
			r.mu.Lock()
			if r.closed {
				r.mu.Unlock()
				f.Close()
				os.Remove(p)
				return
			}
			r.files = append(r.files, readyFile{p, f})
			r.mu.Unlock()
		}
	}
}

// close ends the filler and removes the files still waiting.
func (r *readyFiles) close() {
	r.mu.Lock()
	r.closed = true
	files := r.files
	r.files = nil
	close(r.need)
	r.mu.Unlock()
	<-r.done
	for _, rf := range files {
		rf.f.Close()
		os.Remove(rf.path)
	}
}
