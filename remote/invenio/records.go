package invenio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/dmsfs/dmsfs/remote"
)

// record is the part of a record or draft JSON dmsfs uses.
type record struct {
	ID          string          `json:"id"`
	RevisionID  int             `json:"revision_id"`
	Created     string          `json:"created"`
	Updated     string          `json:"updated"`
	IsPublished bool            `json:"is_published"`
	IsDraft     bool            `json:"is_draft"`
	Status      string          `json:"status"`
	Metadata    recordMetadata  `json:"metadata"`
	Errors      json.RawMessage `json:"errors"` // problems a draft save reported
	Versions    struct {
		Index int `json:"index"`
	} `json:"versions"`
	Parent struct {
		ID string `json:"id"`
	} `json:"parent"`
	Links struct {
		Self     string `json:"self"`
		Files    string `json:"files"`
		Versions string `json:"versions"`
		Publish  string `json:"publish"`
		Draft    string `json:"draft"`
		HTML     string `json:"self_html"`
	} `json:"links"`
}

// recordMetadata is a record's metadata: the title, and all of it for the
// record directory's fields.
type recordMetadata struct {
	Title string
	All   map[string]any
}

func (m *recordMetadata) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &m.All); err != nil {
		return err
	}
	m.Title, _ = m.All["title"].(string)
	return nil
}

// fieldError is one problem of a draft save: the field and what is wrong.
type fieldError struct {
	Field    string   `json:"field"`
	Messages []string `json:"messages"`
}

// problems are the errors a draft save reported (a list; other forms are
// taken as none).
func (rec *record) problems() []fieldError {
	var out []fieldError
	if len(rec.Errors) > 0 && json.Unmarshal(rec.Errors, &out) != nil {
		return nil
	}
	return out
}

// editable: a draft whose files may change. The edit draft of a published
// record (is_published and is_draft) has its files locked in InvenioRDM;
// files change through a new version.
func (rec *record) editable() bool { return rec.IsDraft && !rec.IsPublished }

type searchResult struct {
	Hits struct {
		Hits  []record `json:"hits"`
		Total int      `json:"total"`
	} `json:"hits"`
	Links struct {
		Next string `json:"next"`
	} `json:"links"`
}

// fileEntry is one file of a record's file list.
type fileEntry struct {
	Key      string `json:"key"`
	Size     int64  `json:"size"`
	Checksum string `json:"checksum"`
	Status   string `json:"status"`
	Created  string `json:"created"`
	Updated  string `json:"updated"`
	// Metadata is the file's metadata dict (FileSchema "metadata").
	Metadata map[string]any `json:"metadata"`
	Links    struct {
		Self    string `json:"self"`
		Content string `json:"content"`
		Commit  string `json:"commit"`
		Parts   []struct {
			Part int    `json:"part"`
			URL  string `json:"url"`
		} `json:"parts"`
	} `json:"links"`
}

type fileList struct {
	Enabled bool        `json:"enabled"`
	Entries []fileEntry `json:"entries"`
}

// parseTime reads Invenio's timestamps leniently (ISO with offset, or the
// older space-separated form).
func parseTime(s string) time.Time {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999", "2006-01-02T15:04:05.999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}

// IDs: "root"; "r/<parent id>" for a record (stable across its versions);
// "d/<parent id>/<key prefix>" for a folder made of key prefixes;
// "f/<parent id>/<key>" for a file. Renames keep IDs through an alias table.
const rootID remote.ID = "root"

type ref struct {
	kind   byte // 'r', 'd', 'f'
	parent string
	key    string // key or key prefix; "" for a record
}

func (f ref) id() remote.ID {
	if f.kind == 'r' {
		return remote.ID("r/" + f.parent)
	}
	return remote.ID(string(f.kind) + "/" + f.parent + "/" + f.key)
}

// resolve turns an ID into what it names now.
func (r *Repo) resolve(id remote.ID) (ref, bool) {
	r.mu.Lock()
	if cur, ok := r.alias[id]; ok {
		id = cur
	}
	r.mu.Unlock()
	s := string(id)
	if len(s) < 3 || s[1] != '/' {
		return ref{}, false
	}
	kind, rest := s[0], s[2:]
	switch kind {
	case 'r':
		return ref{kind: 'r', parent: rest}, rest != "" && !strings.Contains(rest, "/")
	case 'd', 'f':
		parent, key, ok := strings.Cut(rest, "/")
		return ref{kind: kind, parent: parent, key: key}, ok && parent != "" && key != ""
	}
	return ref{}, false
}

// stableID is the ID callers know for what is now at cur. When cur is
// still the ID callers know for something renamed away from it, what is
// at cur now gets an ID of its own ("<cur>#<n>"), so that the two are not
// taken for one (found by the reference-model test: a new file at a
// renamed file's old key read the renamed one).
func (r *Repo) stableID(cur remote.ID) remote.ID {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.stable[cur]; ok {
		return s
	}
	if _, taken := r.alias[cur]; !taken {
		return cur
	}
	r.minted++
	id := remote.ID(fmt.Sprintf("%s#%d", cur, r.minted))
	r.alias[id] = cur
	r.stable[cur] = id
	return id
}

// moved records that what the caller knows as id now lives at cur.
func (r *Repo) moved(id, cur remote.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.alias[id]; ok {
		delete(r.stable, old)
	}
	if id == cur {
		delete(r.alias, id)
		return
	}
	r.alias[id] = cur
	r.stable[cur] = id
}

func (r *Repo) lock(parent string) func() {
	r.mu.Lock()
	l := r.locks[parent]
	if l == nil {
		l = new(sync.Mutex)
		r.locks[parent] = l
	}
	r.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// working returns a record's working copy: the draft where there is one,
// otherwise the latest published version. It asks the server (by the
// remembered self link, else by a search) unless cached is set and the
// record is known.
func (r *Repo) working(ctx context.Context, parent string, cached bool) (*record, error) {
	r.mu.Lock()
	known := r.recs[parent]
	r.mu.Unlock()
	if known != nil && cached {
		return known, nil
	}
	if known != nil {
		var rec record
		err := r.getJSON(ctx, known.Links.Self, &rec)
		if err == nil && rec.Parent.ID == parent && (rec.IsDraft || !known.IsDraft) {
			r.remember(&rec)
			return &rec, nil
		}
		if err != nil && !errors.Is(err, remote.ErrNotFound) {
			return nil, err
		}
		// The draft was published or discarded: ask the search.
	}
	var res searchResult
	q := url.Values{"q": {"parent.id:" + parent}, "size": {"5"}, "shared_with_me": {"false"}}
	if err := r.getJSON(ctx, r.search+"?"+q.Encode(), &res); err != nil {
		return nil, err
	}
	for i := range res.Hits.Hits {
		if rec := &res.Hits.Hits[i]; rec.Parent.ID == parent {
			r.remember(rec)
			return rec, nil
		}
	}
	r.mu.Lock()
	delete(r.recs, parent)
	r.mu.Unlock()
	return nil, fmt.Errorf("record %s: %w", parent, remote.ErrNotFound)
}

func (r *Repo) remember(rec *record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs[rec.Parent.ID] = rec
}

// files lists the completed files of a record's working copy by key, and
// keeps the list for cachedFiles.
func (r *Repo) files(ctx context.Context, rec *record) (map[string]fileEntry, error) {
	var fl fileList
	if err := r.getJSON(ctx, rec.Links.Files, &fl); err != nil {
		return nil, err
	}
	out := map[string]fileEntry{}
	for _, e := range fl.Entries {
		if e.Status == "" || e.Status == "completed" { // pending uploads are not shown
			out[e.Key] = e
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fileLists[rec.Parent.ID] = &fileCache{record: rec.ID, files: maps.Clone(out), at: time.Now()}
	return out, nil
}

// fileCache is a record's last file list, kept up to date with this
// client's own changes. It spares a listing per stat and read (a copy of n
// files would otherwise list O(n²) entries); writes check against a fresh
// list.
type fileCache struct {
	record string
	files  map[string]fileEntry
	at     time.Time
}

// fileListAge is how long cachedFiles trusts a list; the filesystem above
// trusts its own listings longer.
const fileListAge = 2 * time.Second

// cachedFiles is workingFiles served from the kept list when it is recent.
func (r *Repo) cachedFiles(ctx context.Context, parent string) (*record, map[string]fileEntry, error) {
	r.mu.Lock()
	rec, c := r.recs[parent], r.fileLists[parent]
	if rec != nil && c != nil && c.record == rec.ID && time.Since(c.at) < fileListAge {
		files := maps.Clone(c.files)
		r.mu.Unlock()
		return rec, files, nil
	}
	r.mu.Unlock()
	return r.workingFiles(ctx, parent)
}

// noteFile records a change this client made: e uploaded to rec, or (e nil)
// key removed from whichever list holds it.
func (r *Repo) noteFile(rec *record, key string, e *fileEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for parent, c := range r.fileLists {
		switch {
		case e == nil:
			delete(c.files, key)
		case rec != nil && c.record == rec.ID && parent == rec.Parent.ID:
			c.files[key] = *e
		}
	}
}

// workingFiles is working + files, asking the search again once if the
// remembered copy has gone (published or discarded meanwhile).
func (r *Repo) workingFiles(ctx context.Context, parent string) (*record, map[string]fileEntry, error) {
	rec, err := r.working(ctx, parent, true)
	if err != nil {
		return nil, nil, err
	}
	fs, err := r.files(ctx, rec)
	if errors.Is(err, remote.ErrNotFound) {
		if rec, err = r.working(ctx, parent, false); err != nil {
			return nil, nil, err
		}
		fs, err = r.files(ctx, rec)
	}
	return rec, fs, err
}

// writable returns a draft of the record whose files may change, making a
// new version (with the published files imported) when the working copy is
// published. Callers hold the record's lock.
func (r *Repo) writable(ctx context.Context, parent string) (*record, error) {
	rec, err := r.working(ctx, parent, true)
	if err != nil {
		return nil, err
	}
	if rec.editable() {
		return rec, nil
	}
	if rec, err = r.working(ctx, parent, false); err != nil || rec.editable() {
		return rec, err
	}
	if rec.Links.Versions == "" {
		return nil, fmt.Errorf("record %s has no versions link: %w", rec.ID, remote.ErrReadOnly)
	}
	var draft record
	if _, err := r.call(ctx, http.MethodPost, rec.Links.Versions, nil, nil, &draft, http.StatusCreated, http.StatusOK); err != nil {
		return nil, fmt.Errorf("new version of %s: %w", rec.ID, err)
	}
	if draft.Links.Files == "" || draft.Links.Self == "" {
		return nil, fmt.Errorf("new version of %s: draft without links: %w", rec.ID, remote.ErrProtocol)
	}
	have, err := r.files(ctx, &draft)
	if err != nil {
		return nil, err
	}
	if len(have) == 0 {
		// The files-import action has no link of its own; its path is the
		// draft's plus /actions/files-import.
		if _, err := r.call(ctx, http.MethodPost, draft.Links.Self+"/actions/files-import", nil, nil, nil, http.StatusCreated, http.StatusOK); err != nil {
			return nil, fmt.Errorf("import files into the new version of %s: %w", rec.ID, err)
		}
	}
	r.log.Info("invenio: started a new version draft", "record", rec.Parent.ID, "draft", draft.ID, "version", draft.Versions.Index)
	r.remember(&draft)
	return &draft, nil
}

// recordNode is the folder a record shows as.
func recordNode(rec *record) remote.Node {
	return remote.Node{ID: ref{kind: 'r', parent: rec.Parent.ID}.id(), Parent: rootID, Kind: remote.KindFolder,
		Name: titleName(rec), Token: strconv.Itoa(rec.RevisionID), ModTime: parseTime(rec.Updated), URL: rec.Links.HTML}
}

// titleName is a record's directory name: its title, or its id when it has
// none; cut to fit a file name.
func titleName(rec *record) string {
	name := strings.TrimSpace(rec.Metadata.Title)
	if name == "" {
		return rec.Parent.ID
	}
	for len(name) > 240 {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	return name
}

// Root is the list of the user's records.
func (r *Repo) Root(ctx context.Context) (remote.Node, error) {
	return remote.Node{ID: rootID, Kind: remote.KindFolder, Name: "", NoDocuments: true}, nil
}

// Stat returns one node.
func (r *Repo) Stat(ctx context.Context, id remote.ID) (remote.Node, error) {
	if id == rootID {
		return r.Root(ctx)
	}
	f, ok := r.resolve(id)
	if !ok {
		return remote.Node{}, fmt.Errorf("%s: %w", id, remote.ErrNotFound)
	}
	if f.kind == 'r' {
		rec, err := r.working(ctx, f.parent, false)
		if err != nil {
			return remote.Node{}, err
		}
		n := recordNode(rec)
		n.ID = id
		return n, nil
	}
	_, files, err := r.cachedFiles(ctx, f.parent)
	if err != nil {
		return remote.Node{}, err
	}
	if f.kind == 'f' {
		e, ok := files[f.key]
		if !ok {
			return remote.Node{}, fmt.Errorf("%s: %w", f.key, remote.ErrNotFound)
		}
		return r.fileNode(id, r.parentOf(f), e), nil
	}
	if !r.dirExists(f, files) {
		return remote.Node{}, fmt.Errorf("%s: %w", f.key, remote.ErrNotFound)
	}
	return remote.Node{ID: id, Parent: r.parentOf(f), Kind: remote.KindFolder, Name: lastName(f.key)}, nil
}

// parentOf is the stable ID of the folder holding f.
func (r *Repo) parentOf(f ref) remote.ID {
	i := strings.LastIndexByte(f.key, '/')
	if !splittable(f.key) || i < 0 {
		return r.stableID(ref{kind: 'r', parent: f.parent}.id())
	}
	return r.stableID(ref{kind: 'd', parent: f.parent, key: f.key[:i]}.id())
}

func (r *Repo) fileNode(id, parent remote.ID, e fileEntry) remote.Node {
	sum := r.checksum(e.Checksum)
	mt := parseTime(e.Updated)
	n := remote.Node{ID: id, Parent: parent, Kind: remote.KindDocument, Name: lastName(e.Key), Token: sum, ModTime: mt,
		Files: []remote.File{{Name: lastName(e.Key), Size: e.Size, ModTime: mt, ContentID: sum}}}
	if len(e.Metadata) > 0 {
		n.Fields = make(map[string]string, len(e.Metadata))
		for k, v := range e.Metadata {
			n.Fields[k] = fieldText(v)
		}
	}
	return n
}

// checksum maps a temporary "multipart:…" checksum to the md5 this client
// computed when it uploaded the file, so tokens do not change when the
// server's background task fills in the md5.
func (r *Repo) checksum(sum string) string {
	if !strings.HasPrefix(sum, "multipart:") {
		return sum
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if md5, ok := r.sums[sum]; ok {
		return md5
	}
	return sum
}

func (r *Repo) dirExists(f ref, files map[string]fileEntry) bool {
	r.mu.Lock()
	made := r.vdirs[f.parent][f.key]
	r.mu.Unlock()
	if made {
		return true
	}
	for k := range files {
		if splittable(k) && strings.HasPrefix(k, f.key+"/") {
			return true
		}
	}
	return false
}

// List returns a folder's children.
func (r *Repo) List(ctx context.Context, folder remote.ID) ([]remote.Node, error) {
	if folder == rootID {
		return r.listRecords(ctx)
	}
	f, ok := r.resolve(folder)
	if !ok {
		return nil, fmt.Errorf("%s: %w", folder, remote.ErrNotFound)
	}
	if f.kind == 'f' {
		return nil, fmt.Errorf("%s: %w", f.key, remote.ErrNotFolder)
	}
	if f.kind == 'r' {
		if _, err := r.working(ctx, f.parent, false); err != nil {
			return nil, err
		}
	}
	_, files, err := r.workingFiles(ctx, f.parent)
	if err != nil {
		return nil, err
	}
	if f.kind == 'd' && !r.dirExists(f, files) {
		return nil, fmt.Errorf("%s: %w", f.key, remote.ErrNotFound)
	}
	prefix := ""
	if f.kind == 'd' {
		prefix = f.key + "/"
	}
	var out []remote.Node
	dirs := map[string]bool{}
	for k, e := range files {
		if !strings.HasPrefix(k, prefix) || (prefix != "" && !splittable(k)) {
			continue
		}
		rest := k[len(prefix):]
		if i := strings.IndexByte(rest, '/'); i >= 0 && splittable(k) {
			dirs[prefix+rest[:i]] = true
			continue
		}
		id := r.stableID(ref{kind: 'f', parent: f.parent, key: k}.id())
		out = append(out, r.fileNode(id, folder, e))
	}
	r.mu.Lock()
	for d := range r.vdirs[f.parent] {
		if rest, ok := strings.CutPrefix(d, prefix); ok && !strings.Contains(rest, "/") {
			dirs[d] = true
		}
	}
	r.mu.Unlock()
	for d := range dirs {
		id := r.stableID(ref{kind: 'd', parent: f.parent, key: d}.id())
		out = append(out, remote.Node{ID: id, Parent: folder, Kind: remote.KindFolder, Name: lastName(d)})
	}
	return out, nil
}

// listRecords pages through the user's records, newest change first, and
// adds the ones made here that the search (eventually consistent) does not
// show yet.
func (r *Repo) listRecords(ctx context.Context) ([]remote.Node, error) {
	out, seen, err := r.searchRecords(ctx, "")
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for parent, at := range r.made {
		if time.Since(at) > time.Minute {
			delete(r.made, parent)
			continue
		}
		if rec := r.recs[parent]; rec != nil && !seen[parent] {
			out = append(out, recordNode(rec))
		}
	}
	return out, nil
}

// searchRecords pages through the user's records that q finds (all for
// ""), newest change first, and returns them with their concept ids.
func (r *Repo) searchRecords(ctx context.Context, q string) ([]remote.Node, map[string]bool, error) {
	v := url.Values{"size": {"100"}, "sort": {"updated-desc"}, "shared_with_me": {"false"}}
	if q != "" {
		v.Set("q", q)
	}
	next := r.search + "?" + v.Encode()
	seen := map[string]bool{}
	var out []remote.Node
	for page := 0; next != "" && page < 100; page++ {
		var res searchResult
		if err := r.getJSON(ctx, next, &res); err != nil {
			return nil, nil, err
		}
		for i := range res.Hits.Hits {
			rec := &res.Hits.Hits[i]
			if rec.Parent.ID == "" || seen[rec.Parent.ID] {
				continue
			}
			seen[rec.Parent.ID] = true
			r.remember(rec)
			n := recordNode(rec)
			n.ID = r.stableID(n.ID)
			out = append(out, n)
		}
		if len(res.Hits.Hits) == 0 {
			break
		}
		next = res.Links.Next
	}
	return out, seen, nil
}

// Mkdir at the root creates a draft record titled name; inside a record it
// makes a folder, which exists on the server once a file is put in it.
func (r *Repo) Mkdir(ctx context.Context, parent remote.ID, name string) (remote.Node, error) {
	if err := checkName(name); err != nil {
		return remote.Node{}, err
	}
	if parent == rootID {
		var rec record
		payload := map[string]any{"metadata": map[string]any{"title": name}, "files": map[string]any{"enabled": true},
			"access": map[string]any{"record": "public", "files": "public"}}
		if _, err := r.call(ctx, http.MethodPost, r.create, jsonBody(payload), nil, &rec, http.StatusCreated); err != nil {
			return remote.Node{}, fmt.Errorf("create record %q: %w", name, err)
		}
		if rec.Parent.ID == "" || rec.Links.Self == "" || rec.Links.Files == "" {
			return remote.Node{}, fmt.Errorf("create record %q: answer without id or links: %w", name, remote.ErrProtocol)
		}
		r.remember(&rec)
		r.mu.Lock()
		r.made[rec.Parent.ID] = time.Now()
		r.mu.Unlock()
		return recordNode(&rec), nil
	}
	f, err := r.folder(parent)
	if err != nil {
		return remote.Node{}, err
	}
	unlock := r.lock(f.parent)
	defer unlock()
	_, files, err := r.cachedFiles(ctx, f.parent)
	if err != nil {
		return remote.Node{}, err
	}
	if f.kind == 'd' && !r.dirExists(f, files) {
		return remote.Node{}, fmt.Errorf("%s: %w", f.key, remote.ErrNotFound)
	}
	key := joinKey(f.key, name)
	d := ref{kind: 'd', parent: f.parent, key: key}
	if _, isFile := files[key]; isFile || r.dirExists(d, files) {
		return remote.Node{}, fmt.Errorf("%s: %w", name, remote.ErrExist)
	}
	r.mu.Lock()
	if r.vdirs[f.parent] == nil {
		r.vdirs[f.parent] = map[string]bool{}
	}
	r.vdirs[f.parent][key] = true
	r.mu.Unlock()
	return remote.Node{ID: d.id(), Parent: parent, Kind: remote.KindFolder, Name: name}, nil
}

// folder resolves the ID of a folder inside a record (a record or a
// folder of keys).
func (r *Repo) folder(id remote.ID) (ref, error) {
	f, ok := r.resolve(id)
	switch {
	case !ok:
		return ref{}, fmt.Errorf("%s: %w", id, remote.ErrNotFound)
	case f.kind == 'f':
		return ref{}, fmt.Errorf("%s: %w", f.key, remote.ErrNotFolder)
	}
	return f, nil
}

// file resolves the ID of a file.
func (r *Repo) file(id remote.ID) (ref, error) {
	f, ok := r.resolve(id)
	switch {
	case !ok:
		return ref{}, fmt.Errorf("%s: %w", id, remote.ErrNotFound)
	case f.kind != 'f':
		return ref{}, fmt.Errorf("%s: %w", id, remote.ErrIsFolder)
	}
	return f, nil
}

func checkName(name string) error {
	if name == "" || strings.ContainsRune(name, 0) {
		return fmt.Errorf("%q: %w", name, remote.ErrInvalidName)
	}
	return nil
}

// Key names: a key's "/" separates folders. A name's own "/" is stored as
// %2F (and a "%" that would read as an escape as %25), so that names
// round-trip; keys written by other tools are shown as they are.

func encodeName(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c == '/':
			b.WriteString("%2F")
		case c == '%' && i+2 < len(name) && isEscape(name[i+1:i+3]):
			b.WriteString("%25")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isEscape(s string) bool { s = strings.ToUpper(s); return s == "2F" || s == "25" }

func decodeName(seg string) string {
	if !strings.Contains(seg, "%") {
		return seg
	}
	var b strings.Builder
	for i := 0; i < len(seg); i++ {
		if seg[i] == '%' && i+2 < len(seg) && isEscape(seg[i+1:i+3]) {
			if strings.ToUpper(seg[i+1:i+3]) == "2F" {
				b.WriteByte('/')
			} else {
				b.WriteByte('%')
			}
			i += 2
			continue
		}
		b.WriteByte(seg[i])
	}
	return b.String()
}

// splittable: a key whose "/" separate folders. A key with an empty
// segment ("a//b", "/a", "a/") is shown as one name instead.
func splittable(key string) bool {
	for _, s := range strings.Split(key, "/") {
		if s == "" {
			return false
		}
	}
	return true
}

func lastName(key string) string {
	if !splittable(key) {
		return key
	}
	return decodeName(key[strings.LastIndexByte(key, '/')+1:])
}

func joinKey(prefix, name string) string {
	if prefix == "" {
		return encodeName(name)
	}
	return prefix + "/" + encodeName(name)
}
