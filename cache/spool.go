package cache

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/dmsfs/dmsfs/remote"
)

// The spool keeps written data on local disk until the repository has
// confirmed it. Its layout in the cache directory:
//
//	spool/data/<key>   content of files with local changes
//	spool/temp/<key>   editor temp and lock files (local only, wiped at start)
//	state.db           bbolt: the upload journal and the local attributes
//	journal.log        records committed since state.db's last transaction
//	                   (commitlog.go)
//
// A journal record is written (and fdatasync'd, in the commit log) only
// after its data file was fsync'd, or with the file's bytes in it, so a
// record always describes durable data. Records are removed only after
// the upload was confirmed.

var (
	bucketJournal = []byte("journal")
	// bucketInline holds the bytes of small files' records, by key, apart
	// from the records so that listing the journal does not read them.
	bucketInline = []byte("inline")
	bucketAttrs  = []byte("attrs")
	// bucketNotes holds what the uploads must remember across restarts
	// (fs/upload: the sums of saves whose answers were lost).
	bucketNotes = []byte("notes")
)

// Op is what an upload does on the repository.
type Op string

const (
	OpInsert  Op = "insert"  // a new document in Parent named Name
	OpReplace Op = "replace" // new content for file File of document Doc
	OpAppend  Op = "append"  // a new file File in document Doc
)

// Record is one pending upload.
type Record struct {
	Key    string    `json:"key"`
	Op     Op        `json:"op"`
	Parent remote.ID `json:"parent,omitempty"`
	Doc    remote.ID `json:"doc,omitempty"`
	// Name is the new document's name (insert) or the file's name in Doc.
	Name string `json:"name"`
	// Token is the concurrency token the change was based on, and Base the
	// content ID of the file it was based on (empty for new files): a
	// replay whose file still has content Base is no conflict.
	Token string `json:"token,omitempty"`
	Base  string `json:"base,omitempty"`
	Size  int64  `json:"size"`
	// Path is where the file was in the mount, for messages.
	Path   string    `json:"path"`
	Queued time.Time `json:"queued"`
	// Mtime and Mode are the local attributes to keep after the upload.
	Mtime time.Time `json:"mtime"`
	Mode  uint32    `json:"mode"`
}

// Attr are attributes kept locally because repositories do not store them.
// For files they hold only while the content is ContentID.
type Attr struct {
	ContentID string    `json:"content,omitempty"`
	Mode      uint32    `json:"mode,omitempty"`
	UID       uint32    `json:"uid"`
	GID       uint32    `json:"gid"`
	HasOwner  bool      `json:"owner,omitempty"`
	Mtime     time.Time `json:"mtime"`
}

// Spool is the durable local store. It is safe for concurrent use.
//
// Lock order: Spool.gmu, then commitLog.mu (a commit folds the log).
type Spool struct {
	dir string
	db  *bolt.DB
	log *commitLog

	ready *readyFiles // empty data files made ahead of Create

	closeOnce sync.Once
	closeErr  error // Close's outcome, set once

	gmu sync.Mutex // guards the two fields below
	// waiting are the updates that came while a transaction ran; they
	// share the next one (group commit).
	waiting []*groupCall
	// committing: a caller runs a transaction now.
	committing bool
}

// groupCall is one update waiting for a transaction.
type groupCall struct {
	fn   func(tx *bolt.Tx) error
	done chan error // the outcome, or errLead: run the next transaction (buffered: 1)
}

// errLead tells a waiting caller to run the next group's transaction.
var errLead = errors.New("lead the next group")

// OpenSpool opens the spool in the cache directory dir.
func OpenSpool(dir string) (*Spool, error) {
	for _, d := range []string{"spool/data", "spool/temp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("cache directory: %w", err)
		}
	}
	// The journal keeps small files' bytes (bucketInline) until they are
	// uploaded, so state.db grows and shrinks by megabytes in a cp -r of
	// small files; each growth past the map remapped it, copying every
	// open node out of the old map (a sixth of the mount's CPU in a
	// write-back upload of 200 files). Mapping 64 MiB from the start
	// costs address space only.
	db, err := bolt.Open(filepath.Join(dir, "state.db"), 0o600, &bolt.Options{Timeout: time.Second, InitialMmapSize: 64 << 20})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("cache directory %s is in use by another dmsfs mount; give each mount its own --cache-dir", dir)
		}
		return nil, fmt.Errorf("cache directory %s: %w", dir, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketJournal, bucketAttrs, bucketInline, bucketMeta, bucketNotes} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("cache directory %s: %w", dir, err)
	}
	l, err := openLog(db, filepath.Join(dir, "journal.log"))
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("cache directory %s: commit log: %w", dir, err)
	}
	s := &Spool{dir: dir, db: db, log: l}
	// Temp files live as long as the mount; data files without a record
	// were never promised to anybody.
	os.RemoveAll(filepath.Join(dir, "spool/temp"))
	_ = os.MkdirAll(filepath.Join(dir, "spool/temp"), 0o700)
	known := map[string]bool{}
	recs, err := s.Pending()
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	for _, r := range recs {
		known[r.Key] = true
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "spool/data"))
	for _, e := range entries {
		if !known[e.Name()] {
			os.Remove(filepath.Join(dir, "spool/data", e.Name()))
		}
	}
	s.ready = newReadyFiles(filepath.Join(dir, "spool/temp"))
	return s, nil
}

// Close folds the commit log into state.db and closes both. Calls after
// the first return its outcome.
func (s *Spool) Close() error {
	s.closeOnce.Do(func() {
		if s.ready != nil {
			s.ready.close()
		}
		err := s.update(func(*bolt.Tx) error { return nil })
		err = errors.Join(err, s.log.close())
		s.closeErr = errors.Join(err, s.db.Close())
	})
	return s.closeErr
}

// update runs fn in a transaction that also folds the commit log's
// entries into state.db. Updates that come while a transaction runs share
// the next one: uploads finishing together (16 small ones at once) then
// pay one commit's two fsyncs, not one each in turn. (bbolt's Batch does
// not group here: without a delay, each caller's batch starts at once and
// waits for the writer lock alone; with one, a lone close waits for it.)
func (s *Spool) update(fn func(tx *bolt.Tx) error) error {
	c := &groupCall{fn: fn, done: make(chan error, 1)}
	s.gmu.Lock()
	s.waiting = append(s.waiting, c)
	if s.committing {
		s.gmu.Unlock()
		if err := <-c.done; !errors.Is(err, errLead) {
			return err
		}
		s.gmu.Lock() // this caller runs the group it is in
	}
	s.committing = true
	group := s.waiting
	s.waiting = nil
	s.gmu.Unlock()
	s.commit(group) // tells each its outcome, this caller too
	// Hand over to the first that came meanwhile: nobody waits for more
	// than the transaction running and its own.
	s.gmu.Lock()
	if len(s.waiting) > 0 {
		next := s.waiting[0]
		s.gmu.Unlock()
		next.done <- errLead
	} else {
		s.committing = false
		s.gmu.Unlock()
	}
	return <-c.done
}

// commit runs a group's updates in one transaction and tells each its
// outcome. If one fails, each runs again in a transaction of its own, so
// that one caller's failure is nobody else's.
func (s *Spool) commit(group []*groupCall) {
	run := func(calls []*groupCall) error {
		var upTo uint64
		err := s.db.Update(func(tx *bolt.Tx) error {
			n, err := s.log.fold(tx)
			if err != nil {
				return err
			}
			upTo = n
			for _, c := range calls {
				if err := c.fn(tx); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil {
			s.log.folded(upTo)
		}
		return err
	}
	if err := run(group); err == nil || len(group) == 1 {
		for _, c := range group {
			c.done <- err
		}
		return
	}
	for _, c := range group {
		c.done <- run([]*groupCall{c})
	}
}

// Dir is the cache directory.
func (s *Spool) Dir() string { return s.dir }

// Create makes a new empty data file; temp files go where a restart wipes
// them.
func (s *Spool) Create(temp bool) (key string, f *os.File, err error) {
	b := make([]byte, 12)
	rand.Read(b)
	key = hex.EncodeToString(b)
	if rf, ok := s.ready.take(); ok {
		if err := os.Rename(rf.path, s.path(key, temp)); err == nil {
			return key, rf.f, nil
		}
		rf.f.Close()
		os.Remove(rf.path)
	}
	f, err = os.OpenFile(s.path(key, temp), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", nil, fmt.Errorf("spool: %w", err)
	}
	return key, f, nil
}

func (s *Spool) path(key string, temp bool) string {
	if temp {
		return filepath.Join(s.dir, "spool/temp", key)
	}
	return filepath.Join(s.dir, "spool/data", key)
}

// Path is where the data of a journaled key lives.
func (s *Spool) Path(key string) string { return s.path(key, false) }

// Adopt moves a temp file into the durable area, when a temp file is renamed
// to a real name. Open descriptors follow the rename.
func (s *Spool) Adopt(key string) error {
	if err := os.Rename(s.path(key, true), s.path(key, false)); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

// InlineMax is the largest file whose journal record holds its bytes: its
// close is durable with one fdatasync of the commit log, where a bigger
// file's needs an fsync of its data file first.
const InlineMax = 64 << 10

// Commit makes f's content durable and records the upload: in the record
// itself for a small file, else by an fsync of f first. Calling it again
// for the same key replaces the record.
func (s *Spool) Commit(f *os.File, rec Record) error {
	var inline []byte
	if rec.Size <= InlineMax {
		inline = make([]byte, rec.Size)
		if n, err := f.ReadAt(inline, 0); int64(n) != rec.Size || err != nil && !errors.Is(err, io.EOF) {
			inline = nil // not what the record says: made durable as a big one
		}
	}
	if inline == nil {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("spool: sync %s: %w", rec.Path, err)
		}
	}
	if err := s.log.append(rec, inline); err != nil {
		return fmt.Errorf("spool: journal %s: %w", rec.Path, err)
	}
	return nil
}

// Inline is the content a small file's record holds (Commit), if it holds
// one: after a crash it, not the data file (which was not fsync'd), is the
// content the close promised.
func (s *Spool) Inline(key string) ([]byte, bool) {
	var out []byte
	_ = s.log.view(s.db, func(tx *bolt.Tx, pending map[string]logEntry) error {
		if e, ok := pending[key]; ok {
			if e.inline != nil {
				out = append([]byte{}, e.inline...)
			}
			return nil
		}
		if v := tx.Bucket(bucketInline).Get([]byte(key)); v != nil {
			out = append([]byte{}, v...)
		}
		return nil
	})
	return out, out != nil
}

// forget deletes key's record (tx open).
func forget(tx *bolt.Tx, key string) error {
	if err := tx.Bucket(bucketJournal).Delete([]byte(key)); err != nil {
		return err
	}
	return tx.Bucket(bucketInline).Delete([]byte(key))
}

// Forget drops the record of key (after a confirmed upload, or when the
// file was deleted); the data file stays until Remove.
func (s *Spool) Forget(key string) error {
	return s.update(func(tx *bolt.Tx) error { return forget(tx, key) })
}

// Remove deletes the data file of key and, if it was journaled, its record
// (a transaction with two fsyncs that unjournaled files need not pay).
func (s *Spool) Remove(key string, temp, journaled bool) {
	if key == "" {
		return
	}
	if !temp && journaled {
		_ = s.Forget(key)
	}
	os.Remove(s.path(key, temp))
}

// Pending lists the journal.
func (s *Spool) Pending() ([]Record, error) {
	var out []Record
	err := s.log.view(s.db, func(tx *bolt.Tx, pending map[string]logEntry) error {
		err := tx.Bucket(bucketJournal).ForEach(func(k, v []byte) error {
			if _, newer := pending[string(k)]; newer {
				return nil
			}
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("spool: journal record %s is corrupt: %w", k, err)
			}
			out = append(out, r)
			return nil
		})
		for _, e := range pending {
			out = append(out, e.rec)
		}
		return err
	})
	return out, err
}

// SetAttr stores local attributes under key.
func (s *Spool) SetAttr(key string, a Attr) error {
	v, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketAttrs).Put([]byte(key), v) })
}

// GetAttr returns the attributes stored under key.
func (s *Spool) GetAttr(key string) (Attr, bool) {
	var a Attr
	var ok bool
	_ = s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketAttrs).Get([]byte(key)); v != nil {
			ok = json.Unmarshal(v, &a) == nil
		}
		return nil
	})
	return a, ok
}

// SetNote keeps v under key durably (nil v: drops it).
func (s *Spool) SetNote(key string, v []byte) error {
	return s.update(func(tx *bolt.Tx) error {
		if v == nil {
			return tx.Bucket(bucketNotes).Delete([]byte(key))
		}
		return tx.Bucket(bucketNotes).Put([]byte(key), v)
	})
}

// Notes returns what SetNote kept, by key.
func (s *Spool) Notes() (map[string][]byte, error) {
	out := map[string][]byte{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketNotes).ForEach(func(k, v []byte) error {
			out[string(k)] = slices.Clone(v)
			return nil
		})
	})
	return out, err
}

// DeleteAttr forgets the attributes under key.
func (s *Spool) DeleteAttr(key string) {
	_ = s.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketAttrs).Delete([]byte(key)) })
}

// Finish ends an upload in one transaction: the journal record of key goes,
// and the attributes under attrKey are set (a != nil) or dropped.
func (s *Spool) Finish(key, attrKey string, a *Attr) error {
	var v []byte
	if a != nil {
		var err error
		if v, err = json.Marshal(a); err != nil {
			return err
		}
	}
	return s.update(func(tx *bolt.Tx) error {
		if key != "" {
			if err := forget(tx, key); err != nil {
				return err
			}
		}
		if v == nil {
			return tx.Bucket(bucketAttrs).Delete([]byte(attrKey))
		}
		return tx.Bucket(bucketAttrs).Put([]byte(attrKey), v)
	})
}
