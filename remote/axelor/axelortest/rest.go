package axelortest

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	bolt "go.etcd.io/bbolt"
)

type searchRequest struct {
	Offset int      `json:"offset"`
	Limit  int      `json:"limit"`
	SortBy []string `json:"sortBy"`
	Fields []string `json:"fields"`
	Data   struct {
		Domain        string         `json:"_domain"`
		DomainContext map[string]any `json:"_domainContext"`
		Archived      bool           `json:"_archived"`
	} `json:"data"`
}

var (
	reParam    = regexp.MustCompile(`^self\.(id|parent\.id|relatedId|relatedModel|fileName) = :(\w+)$`)
	reLiteral  = regexp.MustCompile(`^self\.(relatedModel|fileName) = '([^']*)'$`)
	reIsNull   = regexp.MustCompile(`^self\.(parent|metaFile|relatedModel) IS (NOT )?NULL$`)
	reNotLit   = regexp.MustCompile(`^self\.relatedModel != '([^']*)'$`)
	reLike     = regexp.MustCompile(`^LOWER\(self\.fileName\) LIKE :(\w+)$`)
	reNotDir   = regexp.MustCompile(`^COALESCE\(self\.isDirectory, FALSE\) = FALSE$`)
	reDirBool  = regexp.MustCompile(`^self\.isDirectory = (true|false)$`)
	reSplitAnd = regexp.MustCompile(`(?i)\s+AND\s+`)
	// What a change poller asks (JPQL as Axelor's domains take it):
	// rows made or changed after a time, and which of some ids are left.
	reChangedSince = regexp.MustCompile(`^\(self\.createdOn > :(\w+) OR self\.updatedOn > :(\w+) OR self\.metaFile\.updatedOn > :(\w+)\)$`)
	reIDIn         = regexp.MustCompile(`^self\.id IN :(\w+)$`)
)

// timeParam reads a LocalDateTime parameter as Axelor binds one from the
// domain context (ISO, no zone, fraction optional).
func timeParam(v any) (time.Time, bool) {
	s, _ := v.(string)
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05.999999999Z07:00", "2006-01-02T15:04Z07:00", "2006-01-02T15:04"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// compileDomain turns the JPQL fragments this server understands into a
// row filter.
func compileDomain(domain string, ctx map[string]any) (func(*dmsFile) bool, bool) {
	var tests []func(*dmsFile) bool
	if strings.TrimSpace(domain) == "" {
		return func(*dmsFile) bool { return true }, true
	}
	for _, clause := range reSplitAnd.Split(strings.TrimSpace(domain), -1) {
		clause = strings.TrimSpace(clause)
		switch {
		case reParam.MatchString(clause):
			m := reParam.FindStringSubmatch(clause)
			v, present := ctx[m[2]]
			if !present {
				return nil, false
			}
			field := m[1]
			tests = append(tests, func(f *dmsFile) bool { return fieldEquals(f, field, v) })
		case reLiteral.MatchString(clause):
			m := reLiteral.FindStringSubmatch(clause)
			field, v := m[1], m[2]
			tests = append(tests, func(f *dmsFile) bool { return fieldEquals(f, field, v) })
		case reIsNull.MatchString(clause):
			m := reIsNull.FindStringSubmatch(clause)
			field, not := m[1], m[2] != ""
			tests = append(tests, func(f *dmsFile) bool {
				null := f.RelatedModel == ""
				switch field {
				case "parent":
					null = f.Parent == 0
				case "metaFile":
					null = f.MetaFile == 0
				}
				return null != not
			})
		case reLike.MatchString(clause):
			pat, ok := ctx[reLike.FindStringSubmatch(clause)[1]].(string)
			if !ok {
				return nil, false
			}
			re, err := likeRegexp(pat)
			if err != nil {
				return nil, false
			}
			tests = append(tests, func(f *dmsFile) bool { return re.MatchString(strings.ToLower(f.FileName)) })
		case reNotLit.MatchString(clause):
			v := reNotLit.FindStringSubmatch(clause)[1]
			// JPQL: a NULL compares as unknown, so the row is not taken.
			tests = append(tests, func(f *dmsFile) bool { return f.RelatedModel != "" && f.RelatedModel != v })
		case reChangedSince.MatchString(clause):
			m := reChangedSince.FindStringSubmatch(clause)
			since, ok1 := timeParam(ctx[m[1]])
			if _, ok2 := timeParam(ctx[m[2]]); !ok1 || !ok2 || m[1] != m[2] || m[2] != m[3] {
				return nil, false
			}
			// Compared at the precision the database keeps and the API shows
			// (javaTime: microseconds).
			after := func(t time.Time) bool { return t.Truncate(time.Microsecond).After(since) }
			tests = append(tests, func(f *dmsFile) bool {
				return after(f.CreatedOn) || after(f.UpdatedOn) || after(f.metaUpdated)
			})
		case reIDIn.MatchString(clause):
			list, ok := ctx[reIDIn.FindStringSubmatch(clause)[1]].([]any)
			if !ok {
				return nil, false
			}
			ids := map[int64]bool{}
			for _, v := range list {
				ids[toInt(v)] = true
			}
			tests = append(tests, func(f *dmsFile) bool { return ids[f.ID] })
		case reNotDir.MatchString(clause):
			tests = append(tests, func(f *dmsFile) bool { return !f.IsDirectory })
		case reDirBool.MatchString(clause):
			want := reDirBool.FindStringSubmatch(clause)[1] == "true"
			tests = append(tests, func(f *dmsFile) bool { return f.IsDirectory == want })
		default:
			return nil, false
		}
	}
	return func(f *dmsFile) bool {
		for _, t := range tests {
			if !t(f) {
				return false
			}
		}
		return true
	}, true
}

func fieldEquals(f *dmsFile, field string, v any) bool {
	switch field {
	case "id":
		return f.ID == toInt(v)
	case "parent.id":
		return f.Parent == toInt(v)
	case "relatedId":
		return f.RelatedID == toInt(v)
	case "relatedModel":
		s, _ := v.(string)
		return f.RelatedModel == s
	case "fileName":
		s, _ := v.(string)
		return f.FileName == s
	}
	return false
}

func toInt(v any) int64 {
	switch n := v.(type) {
	case float64:
		return int64(n)
	case string:
		i, _ := strconv.ParseInt(n, 10, 64)
		return i
	case json.Number:
		i, _ := n.Int64()
		return i
	}
	return 0
}

func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	var req searchRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		failure(w, -1, "Error", "Invalid request: "+err.Error(), nil)
		return
	}
	match, valid := compileDomain(req.Data.Domain, req.Data.DomainContext)
	if !valid {
		failure(w, -1, "Error", "Invalid domain: "+req.Data.Domain, nil)
		return
	}
	populate := true
	if p, ok := req.Data.DomainContext["_populate"].(bool); ok {
		populate = p
	}
	var rows []map[string]any
	var total int
	a := s.access(r)
	s.st.db.View(func(tx *bolt.Tx) error {
		var hits []*dmsFile
		withMeta := strings.Contains(req.Data.Domain, "self.metaFile.updatedOn")
		for _, f := range candidates(tx, req.Data.Domain, req.Data.DomainContext) {
			if m, ok := getRow[metaFile](tx, bucketMeta, f.MetaFile); withMeta && ok {
				f.metaUpdated = m.UpdatedOn
			}
			// The read permission filters like a domain clause
			// (Resource.search adds it to the query).
			if (!f.Archived || req.Data.Archived) && match(f) && a.read(tx, f) {
				hits = append(hits, f)
			}
		}
		sortRows(hits, req.SortBy)
		total = len(hits)
		if req.Offset > 0 {
			hits = hits[min(req.Offset, len(hits)):]
		}
		if req.Limit > 0 && len(hits) > req.Limit {
			hits = hits[:req.Limit]
		}
		for _, f := range hits {
			rows = append(rows, a.strip(tx, f, req.Fields, render(tx, f, req.Fields, populate)))
		}
		return nil
	})
	if rows == nil {
		rows = []map[string]any{}
	}
	if req.Limit <= 0 {
		total = len(rows)
	}
	ok(w, rows, total)
}

// candidates narrows a search with the id and parent indexes where the
// domain names one; match still filters the result.
func candidates(tx *bolt.Tx, domain string, ctx map[string]any) []*dmsFile {
	for _, clause := range reSplitAnd.Split(strings.TrimSpace(domain), -1) {
		clause = strings.TrimSpace(clause)
		if m := reParam.FindStringSubmatch(clause); m != nil {
			switch m[1] {
			case "id":
				if f, ok := getRow[dmsFile](tx, bucketFiles, toInt(ctx[m[2]])); ok {
					return []*dmsFile{f}
				}
				return nil
			case "parent.id":
				return children(tx, toInt(ctx[m[2]]))
			}
		}
		if m := reIsNull.FindStringSubmatch(clause); m != nil && m[1] == "parent" {
			return children(tx, 0)
		}
	}
	return allFiles(tx)
}

func sortRows(rows []*dmsFile, by []string) {
	if len(by) == 0 {
		by = []string{"fileName", "id"}
	}
	sort.SliceStable(rows, func(i, j int) bool {
		for _, k := range by {
			desc := strings.HasPrefix(k, "-")
			k = strings.TrimPrefix(k, "-")
			var c int
			switch k {
			case "id":
				c = cmpInt(rows[i].ID, rows[j].ID)
			case "fileName":
				c = strings.Compare(rows[i].FileName, rows[j].FileName)
			case "createdOn":
				c = rows[i].CreatedOn.Compare(rows[j].CreatedOn)
			case "updatedOn":
				c = rows[i].UpdatedOn.Compare(rows[j].UpdatedOn)
			}
			if c != 0 {
				return (c < 0) != desc
			}
		}
		return false
	})
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// render serialises a row as search does: id and version always, the
// requested fields (dotted ones as flat keys), and the populate extras.
func render(tx *bolt.Tx, f *dmsFile, fields []string, populate bool) map[string]any {
	row := map[string]any{"id": f.ID, "version": f.Version}
	meta, hasMeta := getRow[metaFile](tx, bucketMeta, f.MetaFile)
	ref := func(id int64) any {
		if id == 0 {
			return nil
		}
		p, ok := getRow[dmsFile](tx, bucketFiles, id)
		if !ok {
			return nil
		}
		return map[string]any{"id": p.ID, "$version": p.Version, "fileName": p.FileName}
	}
	metaField := func(name string) any {
		if !hasMeta {
			return nil
		}
		switch name {
		case "id":
			return meta.ID
		case "version":
			return meta.Version
		case "fileSize":
			return meta.FileSize
		case "fileType":
			return meta.FileType
		case "fileName":
			return meta.FileName
		case "createdOn":
			return javaTime(meta.CreatedOn)
		case "updatedOn":
			return javaTime(meta.UpdatedOn)
		case "description":
			return nilIfEmpty(meta.Description)
		}
		return nil
	}
	for _, name := range fields {
		switch name {
		case "fileName":
			row[name] = f.FileName
		case "isDirectory":
			row[name] = f.IsDirectory
		case "parent":
			row[name] = ref(f.Parent)
		case "parent.id":
			if f.Parent == 0 {
				row[name] = nil
			} else {
				row[name] = f.Parent
			}
		case "metaFile":
			if hasMeta {
				row[name] = map[string]any{"id": meta.ID, "$version": meta.Version, "fileName": meta.FileName}
			} else {
				row[name] = nil
			}
		case "relatedModel":
			if f.RelatedModel == "" {
				row[name] = nil
			} else {
				row[name] = f.RelatedModel
			}
		case "relatedId":
			row[name] = f.RelatedID
		case "createdOn":
			row[name] = javaTime(f.CreatedOn)
		case "updatedOn":
			row[name] = javaTime(f.UpdatedOn)
		case "contentType", "content":
			row[name] = nil
		case "tags":
			row[name] = tagRefs(tx, f.Tags)
		default:
			if sub, ok := strings.CutPrefix(name, "metaFile."); ok {
				row[name] = metaField(sub)
			} // unknown fields are dropped silently
		}
	}
	if populate {
		upd := f.UpdatedOn
		if upd.IsZero() {
			upd = f.CreatedOn
		}
		row["updatedOn"] = javaTime(upd)
		row["canWrite"], row["canShare"], row["offline"] = true, true, false
		row["typeIcon"] = "fa fa-file"
		if hasMeta {
			row["fileType"] = meta.FileType
		}
	}
	return row
}

// saveData is the record part of a save request.
type saveData map[string]any

func refID(v any) (id int64, present, null bool) {
	if v == nil {
		return 0, true, true
	}
	m, ok := v.(map[string]any)
	if !ok {
		return 0, true, true
	}
	return toInt(m["id"]), true, false
}

func (s *Server) save(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Data    saveData   `json:"data"`
		Records []saveData `json:"records"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		failure(w, -1, "Error", "Invalid request: "+err.Error(), nil)
		return
	}
	recs := body.Records
	if body.Data != nil {
		recs = append(recs, body.Data)
	}
	s.write.Lock()
	defer s.write.Unlock()
	var out []map[string]any
	var fail *apiError
	a := s.access(r)
	err := s.st.db.Update(func(tx *bolt.Tx) error {
		for _, d := range recs {
			var f *dmsFile
			if id := toInt(d["id"]); id != 0 {
				f, fail = s.applyUpdate(tx, a, id, d)
			} else {
				f, fail = s.create(tx, a, d)
			}
			if fail != nil {
				return errRollback
			}
			out = append(out, render(tx, f, []string{"fileName", "isDirectory", "parent", "metaFile", "relatedModel", "relatedId", "createdOn"}, true))
		}
		return nil
	})
	if fail != nil {
		fail.write(w)
		return
	}
	if err != nil {
		failure(w, -1, "SQL error", err.Error(), nil)
		return
	}
	ok(w, out, -1)
}

// errRollback aborts a transaction whose failure was already described.
var errRollback = errors.New("rollback")

// create inserts a DMSFile; a failure is returned as the answer to write.
func (s *Server) create(tx *bolt.Tx, a access, d saveData) (*dmsFile, *apiError) {
	name, _ := d["fileName"].(string)
	if name == "" {
		return nil, &apiError{status: -4, title: "Validation error", message: "fileName is required"}
	}
	now := s.opts.Now()
	f := &dmsFile{FileName: name, CreatedOn: now, CreatedBy: a.user}
	f.IsDirectory, _ = d["isDirectory"].(bool)
	if pid, present, null := refID(d["parent"]); present && !null {
		p, ok := getRow[dmsFile](tx, bucketFiles, pid)
		if !ok || !p.IsDirectory || !a.createIn(tx, pid) {
			return nil, accessError("You can't create document here.")
		}
		f.Parent = pid
	}
	if mid, present, null := refID(d["metaFile"]); present && !null {
		m, ok := getRow[metaFile](tx, bucketMeta, mid)
		if !ok {
			return nil, &apiError{status: -1, title: "Reference error", message: "No such MetaFile."}
		}
		if !a.readMeta(m) {
			return nil, accessError("You are not authorized to read this resource.")
		}
		f.MetaFile = mid
	}
	if rm, _ := d["relatedModel"].(string); rm != "" {
		f.RelatedModel, f.RelatedID = rm, toInt(d["relatedId"])
		if f.Parent == 0 && f.RelatedID != 0 {
			home, err := s.home(tx, a, rm, f.RelatedID)
			if err != nil {
				return nil, &apiError{status: -1, title: "Error", message: err.Error()}
			}
			f.Parent = home
		}
	}
	id, err := nextID(tx, bucketFiles)
	if err != nil {
		return nil, &apiError{status: -1, title: "SQL error", message: err.Error()}
	}
	f.ID = id
	if err := saveFile(tx, f, -1); err != nil {
		return nil, &apiError{status: -1, title: "SQL error", message: err.Error()}
	}
	return f, nil
}

// home finds or creates the attachment home folder of record id of model:
// a root folder for the model holding one folder per record.
func (s *Server) home(tx *bolt.Tx, a access, model string, id int64) (int64, error) {
	var root, home int64
	for _, f := range children(tx, 0) {
		if f.IsDirectory && f.RelatedModel == model && f.RelatedID == 0 {
			root = f.ID
		}
	}
	now := s.opts.Now()
	mk := func(name string, parent, related int64) (int64, error) {
		nid, err := nextID(tx, bucketFiles)
		if err != nil {
			return 0, err
		}
		return nid, saveFile(tx, &dmsFile{ID: nid, FileName: name, IsDirectory: true,
			Parent: parent, RelatedModel: model, RelatedID: related, CreatedOn: now, CreatedBy: a.user}, -1)
	}
	var err error
	if root == 0 {
		if root, err = mk(pluralize(humanize(simpleName(model))), 0, 0); err != nil {
			return 0, err
		}
	}
	for _, f := range children(tx, root) {
		if f.IsDirectory && f.RelatedID == id {
			home = f.ID
		}
	}
	if home == 0 {
		name, err := recordName(tx, model, id)
		if err != nil {
			name = strconv.FormatInt(id, 10)
		}
		return mk(name, root, id)
	}
	return home, nil
}

// apiError is a failure answered as Axelor's HTTP 200 envelope.
type apiError struct {
	status         int
	title, message string
	entityID       int64
}

func (e *apiError) write(w http.ResponseWriter) {
	var extra map[string]any
	if e.entityID != 0 {
		extra = map[string]any{"entityId": e.entityID, "entityName": dmsModel}
	}
	failure(w, e.status, e.title, e.message, extra)
}

func staleErr(id int64) *apiError {
	return &apiError{status: -1, title: "Concurrent updates error",
		message: "Record was updated or deleted by another transaction.", entityID: id}
}

func (s *Server) update(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	var body struct {
		Data saveData `json:"data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Data == nil {
		failure(w, -1, "Error", "Invalid request", nil)
		return
	}
	s.write.Lock()
	defer s.write.Unlock()
	var out map[string]any
	var fail *apiError
	s.st.db.Update(func(tx *bolt.Tx) error {
		var f *dmsFile
		if f, fail = s.applyUpdate(tx, s.access(r), id, body.Data); fail != nil {
			return errRollback
		}
		out = render(tx, f, []string{"fileName", "isDirectory", "parent", "metaFile", "relatedModel", "relatedId", "createdOn"}, true)
		return nil
	})
	if fail != nil {
		fail.write(w)
		return
	}
	ok(w, []map[string]any{out}, -1)
}

// applyUpdate changes row id as the generic save does: without "version"
// nothing is applied; a stale version is a concurrent-update failure.
func (s *Server) applyUpdate(tx *bolt.Tx, a access, id int64, d saveData) (*dmsFile, *apiError) {
	f, found := getRow[dmsFile](tx, bucketFiles, id)
	if !found || !a.read(tx, f) {
		return nil, staleErr(id) // an unreadable row is not there for this user
	}
	v, hasVersion := d["version"]
	if !hasVersion {
		return f, nil // silently unchanged
	}
	// The version is compared only when the bean actually changes (JPA
	// _edit → checkVersion happens on a real change; axelor-core
	// com/axelor/db/JPA.java): a save that changes nothing succeeds
	// whatever version it names.
	stale := int(toInt(v)) != f.Version
	changed, oldParent := false, f.Parent
	if name, ok := d["fileName"].(string); ok && name != f.FileName {
		if name == "" {
			return nil, &apiError{status: -4, title: "Validation error", message: "fileName is required"}
		}
		f.FileName, changed = name, true
	}
	if pv, present := d["parent"]; present {
		pid, _, null := refID(pv)
		if null {
			pid = 0
		}
		if pid != f.Parent {
			for p := pid; p != 0; {
				pf, ok := getRow[dmsFile](tx, bucketFiles, p)
				if !ok || !pf.IsDirectory || pf.ID == f.ID {
					return nil, accessError("You can't move document here.")
				}
				p = pf.Parent
			}
			if !a.createIn(tx, pid) {
				return nil, accessError("You can't move document here.")
			}
			f.Parent, changed = pid, true
		}
	}
	if tv, present := d["tags"]; present {
		var ids []int64
		list, _ := tv.([]any)
		for _, x := range list {
			id, _, null := refID(x)
			if null {
				continue
			}
			if _, ok := getRow[dmsTag](tx, bucketTags, id); !ok {
				return nil, &apiError{status: -1, title: "Reference error", message: "No such DMSFileTag."}
			}
			ids = append(ids, id)
		}
		if !slices.Equal(ids, f.Tags) {
			f.Tags, changed = ids, true
		}
	}
	if mv, present := d["metaFile"]; present {
		mid, _, null := refID(mv)
		if null {
			mid = 0
		}
		if mid != 0 {
			m, ok := getRow[metaFile](tx, bucketMeta, mid)
			if !ok {
				return nil, &apiError{status: -1, title: "Reference error", message: "No such MetaFile."}
			}
			if mid != f.MetaFile && !a.readMeta(m) {
				return nil, accessError("You are not authorized to read this resource.")
			}
		}
		if mid != f.MetaFile {
			f.MetaFile, changed = mid, true
		}
	}
	if changed && stale {
		return nil, staleErr(id)
	}
	if changed && !a.write(tx, f) {
		return nil, accessError("You are not authorized to update this resource.")
	}
	if changed {
		f.Version++
		f.UpdatedOn = s.opts.Now()
		if err := saveFile(tx, f, oldParent); err != nil {
			return nil, &apiError{status: -1, title: "SQL error", message: err.Error()}
		}
	}
	return f, nil
}

func (s *Server) removeAll(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Records []saveData `json:"records"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		failure(w, -1, "Error", "Invalid request", nil)
		return
	}
	s.write.Lock()
	defer s.write.Unlock()
	var out []map[string]any
	var stale int64
	var denied bool
	var blobs []string
	a := s.access(r)
	err := s.st.db.Update(func(tx *bolt.Tx) error {
		for _, d := range body.Records {
			id := toInt(d["id"])
			f, found := getRow[dmsFile](tx, bucketFiles, id)
			if !found || !a.read(tx, f) || int(toInt(d["version"])) != f.Version {
				stale = id
				return errRollback
			}
			if !a.write(tx, f) {
				denied = true
				return errRollback
			}
			out = append(out, map[string]any{"id": f.ID, "version": f.Version})
		}
		for _, d := range body.Records {
			var err error
			if blobs, err = s.deleteTree(tx, toInt(d["id"]), blobs); err != nil {
				return err
			}
		}
		return nil
	})
	if stale != 0 {
		staleErr(stale).write(w)
		return
	}
	if denied {
		accessError("You are not authorized to remove this resource.").write(w)
		return
	}
	if err != nil {
		failure(w, -1, "SQL error", err.Error(), nil)
		return
	}
	for _, b := range blobs {
		os.Remove(b)
	}
	ok(w, out, -1)
}

// deleteTree deletes a node with its subtree and its attachment home, and
// MetaFiles that no remaining node references. It returns the blob paths to
// remove once the transaction committed.
func (s *Server) deleteTree(tx *bolt.Tx, id int64, blobs []string) ([]string, error) {
	f, found := getRow[dmsFile](tx, bucketFiles, id)
	if !found {
		return blobs, nil
	}
	var err error
	doomed := children(tx, id)
	for _, r := range children(tx, 0) { // the version store's homes
		if r.RelatedModel == dmsModel && r.RelatedID == 0 {
			for _, h := range children(tx, r.ID) {
				if h.RelatedID == id && h.IsDirectory {
					doomed = append(doomed, h)
				}
			}
		}
	}
	for _, c := range doomed {
		if blobs, err = s.deleteTree(tx, c.ID, blobs); err != nil {
			return blobs, err
		}
	}
	if err := deleteFile(tx, f); err != nil {
		return blobs, err
	}
	if f.MetaFile != 0 {
		shared := false
		for _, o := range allFiles(tx) {
			shared = shared || o.MetaFile == f.MetaFile
		}
		if m, ok := getRow[metaFile](tx, bucketMeta, f.MetaFile); ok && !shared {
			blobs = append(blobs, s.st.blobPath(m))
			if err := tx.Bucket(bucketMeta).Delete(key(m.ID)); err != nil {
				return blobs, err
			}
		}
	}
	return blobs, nil
}

// remove is DELETE R/<id> (?version=v) and POST R/<id>/remove: the
// version is optional and, as upstream, not compared (Resource.remove →
// JPA._edit merges the stale version away; axelor-core
// com/axelor/rpc/Resource.java; spec §4.9). The subtree goes with a
// folder.
func (s *Server) remove(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	s.write.Lock()
	defer s.write.Unlock()
	var out map[string]any
	var blobs []string
	found, denied := false, false
	a := s.access(r)
	err = s.st.db.Update(func(tx *bolt.Tx) error {
		f, ok := getRow[dmsFile](tx, bucketFiles, id)
		if !ok || !a.read(tx, f) {
			return nil
		}
		if !a.write(tx, f) {
			denied = true
			return nil
		}
		found = true
		out = map[string]any{"id": f.ID, "$version": f.Version, "fileName": f.FileName}
		var err error
		blobs, err = s.deleteTree(tx, id, blobs)
		return err
	})
	switch {
	case err != nil:
		failure(w, -1, "SQL error", err.Error(), nil)
		return
	case denied:
		accessError("You are not authorized to remove this resource.").write(w)
		return
	case !found:
		staleErr(id).write(w)
		return
	}
	for _, b := range blobs {
		os.Remove(b)
	}
	ok(w, []map[string]any{out}, -1)
}

// simpleName is a class name without its package.
func simpleName(class string) string { return class[strings.LastIndex(class, ".")+1:] }

// humanize and pluralize name an attachment tree's root folder as
// Axelor's Inflector does ("SaleOrder" → "Sale order" → "Sale orders";
// axelor-common com/axelor/common/Inflector.java): words split at case
// changes, the first capitalised, the rest in lower case; the plural of
// the last word by the common English rules.
func humanize(name string) string {
	var words []string
	rs := []rune(name)
	start := 0
	for i := 1; i < len(rs); i++ {
		lowerToUpper := unicode.IsLower(rs[i-1]) && unicode.IsUpper(rs[i])
		acronymEnd := i+1 < len(rs) && unicode.IsUpper(rs[i-1]) && unicode.IsUpper(rs[i]) && unicode.IsLower(rs[i+1])
		if lowerToUpper || acronymEnd {
			words = append(words, string(rs[start:i]))
			start = i
		}
	}
	words = append(words, string(rs[start:]))
	for i, w := range words {
		w = strings.ToLower(w)
		if i == 0 {
			w = strings.ToUpper(w[:1]) + w[1:]
		}
		words[i] = w
	}
	return strings.Join(words, " ")
}

func pluralize(s string) string {
	switch {
	case strings.HasSuffix(s, "y") && len(s) > 1 && !strings.ContainsAny(s[len(s)-2:len(s)-1], "aeiou"):
		return s[:len(s)-1] + "ies"
	case strings.HasSuffix(s, "s"), strings.HasSuffix(s, "x"), strings.HasSuffix(s, "z"),
		strings.HasSuffix(s, "ch"), strings.HasSuffix(s, "sh"):
		return s + "es"
	}
	return s + "s"
}

// strip drops, for a non-admin, the dotted metaFile fields of a row whose
// MetaFile the user may not read, when metaFile itself was asked for too
// (the check only runs then: Resource.removeNotPermitted, spec §4.1).
func (a access) strip(tx *bolt.Tx, f *dmsFile, fields []string, row map[string]any) map[string]any {
	if a.admin || !slices.Contains(fields, "metaFile") || f.MetaFile == 0 {
		return row
	}
	if m, ok := getRow[metaFile](tx, bucketMeta, f.MetaFile); ok && a.readMeta(m) {
		return row
	}
	for k := range row {
		if strings.HasPrefix(k, "metaFile.") {
			delete(row, k)
		}
	}
	return row
}

// likeRegexp compiles a JPQL LIKE pattern: % any run, _ one character,
// the rest literal (no ESCAPE clause).
func likeRegexp(pat string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	for _, r := range pat {
		switch r {
		case '%':
			b.WriteString("(?s).*")
		case '_':
			b.WriteString("(?s).")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}
