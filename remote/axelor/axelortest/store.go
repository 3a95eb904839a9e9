// Package axelortest is a server that behaves like Axelor Open Platform's
// DMS as ../shared/specs/axelor.md describes it: DMSFile and MetaFile
// records with JPA version counters, session and API-key authentication,
// HTTP 200 answers with status -1 for failures, the chunked upload endpoint
// with its offset checks, ranged downloads, and the attachment "home"
// folders that keep version records. It persists in a data directory.
// Tests can expire sessions, inject failures and count the bytes served.
package axelortest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// dmsModel is the model name of DMS nodes; version records are attached to
// records of this model.
const dmsModel = "com.axelor.dms.db.DMSFile"

var (
	bucketFiles = []byte("dms_file")
	bucketMeta  = []byte("meta_file")
	// bucketChildren indexes DMSFiles by parent: key(parent)+key(id).
	bucketChildren = []byte("dms_file_parent")
)

// dmsFile is a DMS_FILE row.
type dmsFile struct {
	ID           int64     `json:"id"`
	Version      int       `json:"version"`
	FileName     string    `json:"fileName"`
	IsDirectory  bool      `json:"isDirectory"`
	Parent       int64     `json:"parent,omitempty"`
	MetaFile     int64     `json:"metaFile,omitempty"`
	RelatedModel string    `json:"relatedModel,omitempty"`
	RelatedID    int64     `json:"relatedId,omitempty"`
	Archived     bool      `json:"archived,omitempty"`
	CreatedOn    time.Time `json:"createdOn"`
	UpdatedOn    time.Time `json:"updatedOn,omitzero"`
	CreatedBy    string    `json:"createdBy,omitempty"`
	Tags         []int64   `json:"tags,omitempty"`
	// metaUpdated is its MetaFile's updatedOn, filled in for a search
	// that asks for it.
	metaUpdated time.Time
}

// metaFile is a META_FILE row; its bytes are in store/<FilePath>.
type metaFile struct {
	ID          int64     `json:"id"`
	Version     int       `json:"version"`
	FileName    string    `json:"fileName"`
	FilePath    string    `json:"filePath"`
	FileSize    int64     `json:"fileSize"`
	FileType    string    `json:"fileType"`
	CreatedOn   time.Time `json:"createdOn"`
	UpdatedOn   time.Time `json:"updatedOn,omitzero"`
	CreatedBy   string    `json:"createdBy,omitempty"`
	Description string    `json:"description,omitempty"`
}

type store struct {
	dir string
	db  *bolt.DB
}

func openStore(dir string) (*store, error) {
	for _, d := range []string{"store", "tmp_files"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	db, err := bolt.Open(filepath.Join(dir, "axelor.db"), 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("axelor test server data %s: %w", dir, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketFiles, bucketMeta, bucketChildren, bucketPerms, bucketTags} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &store{dir: dir, db: db}, nil
}

func key(id int64) []byte { return []byte(fmt.Sprintf("%020d", id)) }

func getRow[T any](tx *bolt.Tx, bucket []byte, id int64) (*T, bool) {
	v := tx.Bucket(bucket).Get(key(id))
	if v == nil {
		return nil, false
	}
	row := new(T)
	if json.Unmarshal(v, row) != nil {
		return nil, false
	}
	return row, true
}

func putRow(tx *bolt.Tx, bucket []byte, id int64, row any) error {
	v, err := json.Marshal(row)
	if err != nil {
		return err
	}
	return tx.Bucket(bucket).Put(key(id), v)
}

func nextID(tx *bolt.Tx, bucket []byte) (int64, error) {
	seq, err := tx.Bucket(bucket).NextSequence()
	return int64(seq) + 100, err // ids do not start at 1, as in a used database
}

func allFiles(tx *bolt.Tx) []*dmsFile {
	var out []*dmsFile
	tx.Bucket(bucketFiles).ForEach(func(_, v []byte) error {
		f := new(dmsFile)
		if json.Unmarshal(v, f) == nil {
			out = append(out, f)
		}
		return nil
	})
	return out
}

func (s *store) blobPath(m *metaFile) string { return filepath.Join(s.dir, "store", m.FilePath) }

func (s *store) uploadPath(id string) string { return filepath.Join(s.dir, "tmp_files", id) }

// uniquePath is a storage key for a new MetaFile.
func uniquePath(id int64, name string) string {
	safe := []rune{}
	for _, r := range name {
		if r < 128 && (r == '.' || r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			safe = append(safe, r)
		} else {
			safe = append(safe, '_')
		}
	}
	return strconv.FormatInt(id, 10) + "-" + string(safe)
}

// saveFile writes a DMSFile row and keeps the parent index; oldParent is
// the parent the row had (-1 for a new row).
func saveFile(tx *bolt.Tx, f *dmsFile, oldParent int64) error {
	idx := tx.Bucket(bucketChildren)
	if oldParent >= 0 && oldParent != f.Parent {
		if err := idx.Delete(append(key(oldParent), key(f.ID)...)); err != nil {
			return err
		}
	}
	if err := idx.Put(append(key(f.Parent), key(f.ID)...), nil); err != nil {
		return err
	}
	return putRow(tx, bucketFiles, f.ID, f)
}

// deleteFile removes a DMSFile row and its index entry.
func deleteFile(tx *bolt.Tx, f *dmsFile) error {
	if err := tx.Bucket(bucketChildren).Delete(append(key(f.Parent), key(f.ID)...)); err != nil {
		return err
	}
	return tx.Bucket(bucketFiles).Delete(key(f.ID))
}

// children returns the rows whose parent is parent (0: the root).
func children(tx *bolt.Tx, parent int64) []*dmsFile {
	var out []*dmsFile
	prefix := key(parent)
	c := tx.Bucket(bucketChildren).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		id, _ := strconv.ParseInt(string(k[len(prefix):]), 10, 64)
		if f, ok := getRow[dmsFile](tx, bucketFiles, id); ok {
			out = append(out, f)
		}
	}
	return out
}
