package cache

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"strconv"
	"sync"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// The commit log makes a close with --write-back durable with one
// fdatasync (of an append to spool/journal.log) instead of a bbolt
// transaction's two. Its entries are folded into state.db by the next
// transaction the spool makes anyway (an upload's Finish, a SetAttr), or
// at Close and the next OpenSpool.
//
// Each entry carries a sequence number, and state.db keeps the highest it
// holds (bucketMeta "folded"), written in the transaction that folds: an
// entry at or below it is applied already, whatever happened to the log
// after (it is cut to nothing once all of it is folded, without an
// fsync). So a Forget after a fold can never be undone by replaying a
// put.
//
// An entry is: length (4 bytes, of what follows the checksum), CRC-32C
// of what follows it (4), sequence (8), the record's JSON length (4),
// whether it holds the file's bytes (1), the record JSON, the bytes.
// Reading stops at the first entry that is short or whose checksum is
// wrong: a torn append whose fdatasync never returned.

var (
	bucketMeta = []byte("meta")
	keyFolded  = []byte("folded")
	crcTable   = crc32.MakeTable(crc32.Castagnoli)
)

// logEntry is one committed record not folded into state.db yet.
type logEntry struct {
	seq    uint64
	rec    Record
	inline []byte // nil: the data file holds the content
}

// commitLog is the log and the entries of it not folded yet.
type commitLog struct {
	mu sync.Mutex // guards the fields below; held across an append's fdatasync
	f  *os.File
	// seq is the last sequence number given out.
	seq uint64
	// pending are the unfolded entries by key, the newest of each.
	pending map[string]logEntry
}

func encodeEntry(e logEntry) ([]byte, error) {
	rec, err := json.Marshal(e.rec)
	if err != nil {
		return nil, err
	}
	body := make([]byte, 0, 13+len(rec)+len(e.inline))
	body = binary.LittleEndian.AppendUint64(body, e.seq)
	body = binary.LittleEndian.AppendUint32(body, uint32(len(rec)))
	if e.inline != nil {
		body = append(body, 1)
	} else {
		body = append(body, 0)
	}
	body = append(body, rec...)
	body = append(body, e.inline...)
	out := make([]byte, 8, 8+len(body))
	binary.LittleEndian.PutUint32(out, uint32(len(body)))
	binary.LittleEndian.PutUint32(out[4:], crc32.Checksum(body, crcTable))
	return append(out, body...), nil
}

// readEntries reads the log's whole entries, in order.
func readEntries(b []byte) []logEntry {
	var out []logEntry
	for len(b) >= 8 {
		n := binary.LittleEndian.Uint32(b)
		if n < 13 || uint64(n) > uint64(len(b)-8) {
			break
		}
		body := b[8 : 8+n]
		if crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(b[4:]) {
			break
		}
		b = b[8+n:]
		e := logEntry{seq: binary.LittleEndian.Uint64(body)}
		rl := binary.LittleEndian.Uint32(body[8:])
		if uint64(rl) > uint64(len(body)-13) || json.Unmarshal(body[13:13+rl], &e.rec) != nil {
			break
		}
		if body[12] == 1 {
			e.inline = append([]byte{}, body[13+rl:]...)
		}
		out = append(out, e)
	}
	return out
}

// openLog opens the log in path and folds what it holds beyond what
// state.db has into it.
func openLog(db *bolt.DB, path string) (*commitLog, error) {
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	l := &commitLog{pending: map[string]logEntry{}}
	err = db.Update(func(tx *bolt.Tx) error {
		folded := foldedSeq(tx)
		l.seq = folded
		for _, e := range readEntries(b) {
			if e.seq <= folded {
				continue
			}
			if err := putEntry(tx, e); err != nil {
				return err
			}
			l.seq = max(l.seq, e.seq)
		}
		return setFolded(tx, l.seq)
	})
	if err != nil {
		return nil, err
	}
	// All of it is in state.db now.
	l.f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	return l, nil
}

func foldedSeq(tx *bolt.Tx) uint64 {
	v := tx.Bucket(bucketMeta).Get(keyFolded)
	n, _ := strconv.ParseUint(string(v), 10, 64)
	return n
}

func setFolded(tx *bolt.Tx, seq uint64) error {
	if foldedSeq(tx) >= seq {
		return nil
	}
	return tx.Bucket(bucketMeta).Put(keyFolded, []byte(strconv.FormatUint(seq, 10)))
}

// putEntry writes an entry's record (and bytes) into state.db.
func putEntry(tx *bolt.Tx, e logEntry) error {
	v, err := json.Marshal(e.rec)
	if err != nil {
		return err
	}
	if err := tx.Bucket(bucketJournal).Put([]byte(e.rec.Key), v); err != nil {
		return err
	}
	if e.inline == nil {
		return tx.Bucket(bucketInline).Delete([]byte(e.rec.Key))
	}
	return tx.Bucket(bucketInline).Put([]byte(e.rec.Key), e.inline)
}

// append makes an entry durable: one write, one fdatasync.
func (l *commitLog) append(rec Record, inline []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := logEntry{seq: l.seq + 1, rec: rec, inline: inline}
	b, err := encodeEntry(e)
	if err != nil {
		return err
	}
	if _, err := l.f.Write(b); err != nil {
		return fmt.Errorf("commit log: %w", err)
	}
	if err := fdatasync(l.f); err != nil {
		return fmt.Errorf("commit log: %w", err)
	}
	l.seq = e.seq
	l.pending[rec.Key] = e
	return nil
}

// fold writes the unfolded entries into tx; it returns the sequence
// number it folded up to, for folded. Safe to run again in a retried
// transaction.
func (l *commitLog) fold(tx *bolt.Tx) (uint64, error) {
	l.mu.Lock()
	entries := make([]logEntry, 0, len(l.pending))
	for _, e := range l.pending {
		entries = append(entries, e)
	}
	upTo := l.seq
	l.mu.Unlock()
	for _, e := range entries {
		if err := putEntry(tx, e); err != nil {
			return 0, err
		}
	}
	return upTo, setFolded(tx, upTo)
}

// folded drops the entries a committed transaction folded, and cuts the
// log when nothing in it is left unfolded.
func (l *commitLog) folded(upTo uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, e := range l.pending {
		if e.seq <= upTo {
			delete(l.pending, k)
		}
	}
	if len(l.pending) == 0 && l.seq == upTo {
		// Not synced: what is left is below state.db's folded mark.
		_ = l.f.Truncate(0)
	}
}

// view runs fn on state.db with the unfolded entries, which no fold
// drops meanwhile: together they are the journal as of one moment.
func (l *commitLog) view(db *bolt.DB, fn func(tx *bolt.Tx, pending map[string]logEntry) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return db.View(func(tx *bolt.Tx) error { return fn(tx, l.pending) })
}

func (l *commitLog) close() error { return l.f.Close() }

func fdatasync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }
