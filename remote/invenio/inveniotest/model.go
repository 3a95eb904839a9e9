package inveniotest

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// state is everything the server knows; it is saved as one JSON file after
// every change (records are small; contents live in blob files).
type state struct {
	Records map[string]*record // by record (version) id
	// Concepts maps a parent id to its record ids, oldest version first.
	Concepts map[string][]string
	NextID   int
}

// record is one version of a concept. It may have a published state, a draft
// state, or both (the edit draft of a published record has the same id).
type record struct {
	ID, Parent, Owner string
	Index             int
	Published         *recState
	Draft             *recState
	Created           time.Time
}

type recState struct {
	Title string
	// Metadata are the other keys of the record's metadata (metadata.go).
	Metadata map[string]any
	Revision int
	Updated  time.Time
	// Locked: an edit draft of a published record, whose files can only be
	// changed through a new version.
	Locked bool
	Files  map[string]*fileEntry
}

type fileEntry struct {
	Key, Checksum, Status, Transfer string
	Size                            int64
	Parts                           int
	PartSize                        int64
	// Got records which multipart parts arrived.
	Got map[int]bool
	// InitChecksum is the checksum the init entry gave, kept unverified
	// (upstream MultipartTransfer.init_file → FileInstance.set_uri).
	InitChecksum string
	// Metadata is the file's metadata dict (set at init or with a PUT of
	// the entry; upstream FileSchema "metadata").
	Metadata         map[string]any
	Blob             string
	Created, Updated time.Time
}

func (s *recState) clone() *recState {
	c := *s
	c.Metadata = maps.Clone(s.Metadata)
	c.Files = map[string]*fileEntry{}
	for k, f := range s.Files {
		cp := *f
		c.Files[k] = &cp
	}
	return &c
}

func (s *recState) sortedKeys() []string {
	keys := make([]string, 0, len(s.Files))
	for k := range s.Files {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (s *recState) totalBytes() int64 {
	var n int64
	for _, f := range s.Files {
		n += f.Size
	}
	return n
}

func loadState(dir string) (*state, error) {
	st := &state{Records: map[string]*record{}, Concepts: map[string][]string{}, NextID: 1}
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("%s/state.json: %w", dir, err)
	}
	return st, nil
}

// save writes the state atomically (temp file, then rename).
func (st *state) save(dir string) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "state.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "state.json"))
}

// newID makes an id shaped like InvenioRDM's ("abcde-12345").
func (st *state) newID() string {
	n := st.NextID
	st.NextID++
	const letters = "abcdefghjkmnpqrstvwxyz"
	a := ""
	for i, v := 0, n; i < 5; i++ {
		a = string(letters[v%len(letters)]) + a
		v /= len(letters)
	}
	return fmt.Sprintf("%s-%05d", a, n)
}

// versionsOf returns a concept's records, oldest first.
func (st *state) versionsOf(parent string) []*record {
	var out []*record
	for _, id := range st.Concepts[parent] {
		out = append(out, st.Records[id])
	}
	return out
}

// latestPublished is the concept's newest published version.
func (st *state) latestPublished(parent string) *record {
	var best *record
	for _, r := range st.versionsOf(parent) {
		if r.Published != nil && (best == nil || r.Index > best.Index) {
			best = r
		}
	}
	return best
}

// working is what /api/user/records shows for a concept: the newest draft,
// or the latest published version when there is no draft.
func (st *state) working(parent string) (*record, *recState) {
	var draft *record
	for _, r := range st.versionsOf(parent) {
		if r.Draft != nil && (draft == nil || r.Index > draft.Index) {
			draft = r
		}
	}
	if draft != nil {
		return draft, draft.Draft
	}
	if p := st.latestPublished(parent); p != nil {
		return p, p.Published
	}
	return nil, nil
}

// writeBlob stores r as a new blob and returns its name, size and md5.
func writeBlob(dir string, name string, r io.Reader) (int64, string, error) {
	f, err := os.Create(filepath.Join(dir, "blobs", name))
	if err != nil {
		return 0, "", err
	}
	h := md5.New()
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, hex.EncodeToString(h.Sum(nil)), err
}

func blobMD5(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := md5.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
