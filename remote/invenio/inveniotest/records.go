package inveniotest

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// route dispatches on the path; a file key may hold "/", raw or as %2F
// (see fileRoute).
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	p := r.URL.EscapedPath()
	if p == "/.well-known/repository/" || p == "/.well-known/repository" {
		if !s.opts.WellKnown {
			apiError(w, http.StatusNotFound, "The requested URL was not found on the server.")
			return
		}
		s.wellKnown(w, r)
		return
	}
	if p == "/api/user/records" && r.Method == http.MethodGet {
		s.userRecords(w, r)
		return
	}
	if p == "/api/records" && r.Method == http.MethodPost {
		s.createDraft(w, r)
		return
	}
	if rest, ok := strings.CutPrefix(p, "/api/iiif/"); ok {
		s.iiif(w, r, rest)
		return
	}
	rest, ok := strings.CutPrefix(p, "/api/records/")
	if !ok {
		apiError(w, http.StatusNotFound, "The requested URL was not found on the server.")
		return
	}
	seg := strings.Split(rest, "/")
	for i := range seg {
		seg[i], _ = url.PathUnescape(seg[i])
	}
	id := seg[0]
	seg = seg[1:]
	draft := len(seg) > 0 && seg[0] == "draft"
	if draft {
		seg = seg[1:]
	}
	switch {
	case len(seg) == 0:
		s.recordItem(w, r, id, draft)
	case len(seg) == 2 && draft && seg[0] == "actions" && seg[1] == "publish" && r.Method == http.MethodPost:
		s.publish(w, r, id)
	case len(seg) == 2 && draft && seg[0] == "actions" && seg[1] == "files-import" && r.Method == http.MethodPost:
		s.filesImport(w, r, id)
	case len(seg) == 1 && !draft && seg[0] == "versions":
		s.versions(w, r, id)
	case seg[0] == "files":
		s.files(w, r, id, draft, fileRoute(seg[1:]))
	default:
		apiError(w, http.StatusNotFound, "The requested URL was not found on the server.")
	}
}

func (s *Server) base(r *http.Request) string { return "http://" + r.Host }

func (s *Server) wellKnown(w http.ResponseWriter, r *http.Request) {
	b := s.base(r)
	transfers := []string{"L", "M"}
	if s.opts.NoMultipart {
		transfers = []string{"L"}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"name": "inveniotest", "invenio_version": "13.0.0", "transfers": transfers, "default_model": "records",
		"features": []string{"drafts"},
		"links": map[string]any{"self": b + "/.well-known/repository/", "api": b + "/api",
			"records": b + "/api/records", "drafts": b + "/api/user/records", "requests": b + "/api/requests"},
	})
}

// recordJSON renders a record's published (draft=false) or draft state.
func (s *Server) recordJSON(r *http.Request, rec *record, draft bool) map[string]any {
	b := s.base(r) + "/api/records/" + rec.ID
	rs := rec.Published
	status := "published"
	if draft {
		rs = rec.Draft
		status = "draft"
		if rec.Index > 1 {
			status = "new_version_draft"
		}
	}
	links := map[string]any{"parent": s.base(r) + "/api/records/" + rec.Parent,
		"versions": b + "/versions"}
	// The web UI's pages: /uploads/<id> for a draft, /records/<id> for a
	// published record (invenio-rdm-records services/config.py,
	// RecordLink "self_html").
	if draft {
		links["self"] = b + "/draft"
		links["files"] = b + "/draft/files"
		links["publish"] = b + "/draft/actions/publish"
		links["record"] = b
		links["self_html"] = s.base(r) + "/uploads/" + rec.ID
	} else {
		links["self"] = b
		links["self_html"] = s.base(r) + "/records/" + rec.ID
		links["files"] = b + "/files"
		links["draft"] = b + "/draft"
		links["latest"] = b + "/versions/latest"
	}
	latest := s.st.latestPublished(rec.Parent)
	out := map[string]any{
		"id": rec.ID, "revision_id": rs.Revision, "created": rec.Created.Format(isoTime), "updated": rs.Updated.Format(isoTime),
		"is_published": rec.Published != nil, "is_draft": draft, "status": status,
		"metadata": rs.metadataJSON(),
		"versions": map[string]any{"index": rec.Index, "is_latest": latest != nil && latest.ID == rec.ID, "is_latest_draft": draft},
		"parent":   map[string]any{"id": rec.Parent},
		"links":    links,
	}
	files := map[string]any{"enabled": true, "count": len(rs.Files), "total_bytes": rs.totalBytes(), "order": []string{}}
	if !draft { // draft search hits carry no file entries
		entries := map[string]any{}
		for _, k := range rs.sortedKeys() {
			entries[k] = s.fileJSON(r, rec, draft, rs.Files[k])
		}
		files["entries"] = entries
	}
	out["files"] = files
	return out
}

const isoTime = "2006-01-02T15:04:05.000000+00:00"

func (s *Server) userRecords(w http.ResponseWriter, r *http.Request) {
	user, ok := s.requireUser(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	size, page := 25, 1
	if v := q.Get("size"); v != "" {
		size, _ = strconv.Atoi(v)
	}
	if v := q.Get("page"); v != "" {
		page, _ = strconv.Atoi(v)
	}
	if size < 1 || page < 1 || (page-1)*size >= 10000 {
		apiError(w, http.StatusBadRequest, "Invalid pagination parameters.")
		return
	}
	match, ok := parseQ(q.Get("q"))
	if !ok {
		apiError(w, http.StatusBadRequest, "Invalid query string syntax.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	type hit struct {
		rec   *record
		draft bool
		upd   time.Time
	}
	var hits []hit
	for parent := range s.st.Concepts {
		rec, rs := s.st.working(parent)
		if rec == nil || rec.Owner != user {
			continue
		}
		if !match(parent, rec.ID, rs) {
			continue
		}
		hits = append(hits, hit{rec, rs == rec.Draft, rs.Updated})
	}
	sort.Slice(hits, func(i, j int) bool {
		if !hits[i].upd.Equal(hits[j].upd) {
			return hits[i].upd.After(hits[j].upd)
		}
		return hits[i].rec.ID < hits[j].rec.ID
	})
	total := len(hits)
	from := min((page-1)*size, total)
	to := min(from+size, total)
	var out []any
	for _, h := range hits[from:to] {
		out = append(out, s.recordJSON(r, h.rec, h.draft))
	}
	links := map[string]any{"self": pageURL(r, page, size)}
	if to < total {
		links["next"] = pageURL(r, page+1, size)
	}
	if page > 1 {
		links["prev"] = pageURL(r, page-1, size)
	}
	writeJSON(w, http.StatusOK, map[string]any{"hits": map[string]any{"hits": out, "total": total},
		"sortBy": "updated-desc", "page": page, "links": links})
}

func pageURL(r *http.Request, page, size int) string {
	q := r.URL.Query()
	q.Set("page", strconv.Itoa(page))
	q.Set("size", strconv.Itoa(size))
	return "http://" + r.Host + r.URL.Path + "?" + q.Encode()
}

func (s *Server) createDraft(w http.ResponseWriter, r *http.Request) {
	user, ok := s.requireUser(w, r)
	if !ok {
		return
	}
	var body struct {
		Metadata map[string]json.RawMessage `json:"metadata"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		apiError(w, http.StatusBadRequest, "Could not parse the request body: "+err.Error())
		return
	}
	md, errs := checkMetadata(body.Metadata)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now().UTC()
	rec := &record{ID: s.st.newID(), Parent: s.st.newID(), Owner: user, Index: 1, Created: now,
		Draft: &recState{Revision: 1, Updated: now, Files: map[string]*fileEntry{}}}
	rec.Draft.setMetadata(md)
	s.st.Records[rec.ID] = rec
	s.st.Concepts[rec.Parent] = []string{rec.ID}
	if !s.persist(w) {
		return
	}
	out := s.recordJSON(r, rec, true)
	if rec.Draft.Title == "" {
		errs = append(errs, fieldError{Field: "metadata.title", Messages: []string{"Missing data for required field."}})
	}
	if len(errs) > 0 {
		// Drafts are saved even when incomplete; problems come back in errors.
		out["errors"] = errs
	}
	w.Header().Set("ETag", strconv.Quote(strconv.Itoa(rec.Draft.Revision)))
	writeJSON(w, http.StatusCreated, out)
}

// persist saves the state, or, within saveEvery of the last save, has it
// saved shortly (rewriting the whole state on every change of a large copy
// would make it quadratic). On failure it answers 500 and returns false.
// Callers hold s.mu.
func (s *Server) persist(w http.ResponseWriter) bool {
	wasDirty := s.dirty
	s.dirty = true
	if time.Since(s.lastSave) < saveEvery {
		if !wasDirty {
			time.AfterFunc(saveEvery, func() {
				s.mu.Lock()
				defer s.mu.Unlock()
				s.flush()
			})
		}
		return true
	}
	if err := s.flush(); err != nil {
		apiError(w, http.StatusInternalServerError, "internal error: "+err.Error())
		return false
	}
	return true
}

// lookup finds a record the caller may see; it answers 404 itself.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request, id string, draft bool) (*record, bool) {
	rec := s.st.Records[id]
	user, _ := s.user(r)
	if rec == nil || (draft && rec.Owner != user) {
		apiError(w, http.StatusNotFound, "The persistent identifier does not exist.")
		return nil, false
	}
	if draft && rec.Draft == nil || !draft && rec.Published == nil {
		apiError(w, http.StatusNotFound, "The persistent identifier does not exist.")
		return nil, false
	}
	return rec, true
}

// lockedDraft finds the caller's draft id and returns with s.mu held; on
// failure it has answered and holds no lock.
func (s *Server) lockedDraft(w http.ResponseWriter, r *http.Request, id string) (*record, bool) {
	if _, ok := s.requireUser(w, r); !ok {
		return nil, false
	}
	s.mu.Lock()
	rec, ok := s.lookup(w, r, id, true)
	if !ok {
		s.mu.Unlock()
	}
	return rec, ok
}

// ifMatch checks If-Match, which Invenio parses as a bare integer.
func ifMatch(w http.ResponseWriter, r *http.Request, revision int) bool {
	v := r.Header.Get("If-Match")
	if v == "" {
		return true
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		apiError(w, http.StatusBadRequest, "Invalid If-Match header: not an integer.")
		return false
	}
	if n != revision {
		apiError(w, http.StatusPreconditionFailed, "The resource has been modified since it was last retrieved (revision mismatch).")
		return false
	}
	return true
}

func (s *Server) recordItem(w http.ResponseWriter, r *http.Request, id string, draft bool) {
	if draft {
		if _, ok := s.requireUser(w, r); !ok {
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !draft && r.Method == http.MethodGet {
		if _, isParent := s.st.Concepts[id]; isParent {
			if latest := s.st.latestPublished(id); latest != nil {
				http.Redirect(w, r, s.base(r)+"/api/records/"+latest.ID, http.StatusFound)
				return
			}
		}
	}
	if draft && r.Method == http.MethodPost { // edit a published record
		rec, ok := s.lookup(w, r, id, false)
		if !ok {
			return
		}
		if rec.Draft == nil {
			rec.Draft = rec.Published.clone()
			rec.Draft.Locked = true
			rec.Draft.Revision = rec.Published.Revision + 1
			if !s.persist(w) {
				return
			}
		}
		writeJSON(w, http.StatusCreated, s.recordJSON(r, rec, true))
		return
	}
	rec, ok := s.lookup(w, r, id, draft)
	if !ok {
		return
	}
	switch {
	case r.Method == http.MethodGet:
		rs := rec.Published
		if draft {
			rs = rec.Draft
		}
		w.Header().Set("ETag", strconv.Quote(strconv.Itoa(rs.Revision)))
		writeJSON(w, http.StatusOK, s.recordJSON(r, rec, draft))
	case r.Method == http.MethodPut && draft:
		if !ifMatch(w, r, rec.Draft.Revision) {
			return
		}
		var body struct {
			Metadata map[string]json.RawMessage `json:"metadata"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			apiError(w, http.StatusBadRequest, "Could not parse the request body: "+err.Error())
			return
		}
		// The whole record is sent; its metadata replaces the draft's.
		md, errs := checkMetadata(body.Metadata)
		rec.Draft.setMetadata(md)
		rec.Draft.Revision++
		rec.Draft.Updated = s.opts.Now().UTC()
		if !s.persist(w) {
			return
		}
		w.Header().Set("ETag", strconv.Quote(strconv.Itoa(rec.Draft.Revision)))
		out := s.recordJSON(r, rec, true)
		if len(errs) > 0 {
			out["errors"] = errs
		}
		writeJSON(w, http.StatusOK, out)
	case r.Method == http.MethodPut:
		apiError(w, http.StatusBadRequest, "Records should be updated via their draft.")
	case r.Method == http.MethodDelete && draft:
		if !ifMatch(w, r, rec.Draft.Revision) {
			return
		}
		rec.Draft = nil
		if rec.Published == nil { // an unpublished record goes away whole
			delete(s.st.Records, rec.ID)
			ids := s.st.Concepts[rec.Parent]
			for i, v := range ids {
				if v == rec.ID {
					ids = append(ids[:i:i], ids[i+1:]...)
					break
				}
			}
			if len(ids) == 0 {
				delete(s.st.Concepts, rec.Parent)
			} else {
				s.st.Concepts[rec.Parent] = ids
			}
		}
		if !s.persist(w) {
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		apiError(w, http.StatusMethodNotAllowed, "The method is not allowed for the requested URL.")
	}
}

func (s *Server) publish(w http.ResponseWriter, r *http.Request, id string) {
	rec, ok := s.lockedDraft(w, r, id)
	if !ok {
		return
	}
	defer s.mu.Unlock()
	d := rec.Draft
	switch {
	case d.Title == "":
		validationError(w, "metadata.title", "Missing data for required field.")
		return
	case len(d.Files) == 0:
		validationError(w, "files.enabled", "Missing uploaded files. To disable files for this record please mark it as metadata-only.")
		return
	}
	for _, f := range d.Files {
		if f.Status != "completed" {
			validationError(w, "files", "File "+f.Key+" is not completed.")
			return
		}
	}
	d.Locked = false
	d.Revision++
	d.Updated = s.opts.Now().UTC()
	rec.Published, rec.Draft = d, nil
	if !s.persist(w) {
		return
	}
	writeJSON(w, http.StatusAccepted, s.recordJSON(r, rec, false))
}

func (s *Server) versions(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.st.Records[id]
	if rec == nil {
		apiError(w, http.StatusNotFound, "The persistent identifier does not exist.")
		return
	}
	switch r.Method {
	case http.MethodGet:
		var pub []*record
		for _, v := range s.st.versionsOf(rec.Parent) {
			if v.Published != nil {
				pub = append(pub, v)
			}
		}
		sort.Slice(pub, func(i, j int) bool { return pub[i].Index > pub[j].Index })
		size, page := 25, 1
		if v, err := strconv.Atoi(r.URL.Query().Get("size")); err == nil && v > 0 {
			size = v
		}
		if v, err := strconv.Atoi(r.URL.Query().Get("page")); err == nil && v > 0 {
			page = v
		}
		from := min((page-1)*size, len(pub))
		to := min(from+size, len(pub))
		var hits []any
		for _, v := range pub[from:to] {
			hits = append(hits, s.recordJSON(r, v, false))
		}
		links := map[string]any{"self": pageURL(r, page, size)}
		if to < len(pub) {
			links["next"] = pageURL(r, page+1, size)
		}
		writeJSON(w, http.StatusOK, map[string]any{"hits": map[string]any{"hits": hits, "total": len(pub)}, "sortBy": "version", "links": links})
	case http.MethodPost:
		user, ok := s.requireUser(w, r)
		if !ok {
			return
		}
		if rec.Owner != user {
			apiError(w, http.StatusForbidden, "Permission denied.")
			return
		}
		latest := s.st.latestPublished(rec.Parent)
		if latest == nil {
			apiError(w, http.StatusBadRequest, "The record has no published version.")
			return
		}
		for _, v := range s.st.versionsOf(rec.Parent) {
			if v.Published == nil && v.Draft != nil { // one new-version draft at a time
				writeJSON(w, http.StatusCreated, s.recordJSON(r, v, true))
				return
			}
		}
		now := s.opts.Now().UTC()
		nv := &record{ID: s.st.newID(), Parent: rec.Parent, Owner: user, Index: latest.Index + 1, Created: now,
			Draft: &recState{Title: latest.Published.Title, Metadata: maps.Clone(latest.Published.Metadata), Revision: 1, Updated: now, Files: map[string]*fileEntry{}}}
		// A new version starts without these (components/base.py new_version).
		delete(nv.Draft.Metadata, "publication_date")
		delete(nv.Draft.Metadata, "version")
		s.st.Records[nv.ID] = nv
		s.st.Concepts[rec.Parent] = append(s.st.Concepts[rec.Parent], nv.ID)
		if !s.persist(w) {
			return
		}
		writeJSON(w, http.StatusCreated, s.recordJSON(r, nv, true))
	default:
		apiError(w, http.StatusMethodNotAllowed, "The method is not allowed for the requested URL.")
	}
}

func (s *Server) filesImport(w http.ResponseWriter, r *http.Request, id string) {
	rec, ok := s.lockedDraft(w, r, id)
	if !ok {
		return
	}
	defer s.mu.Unlock()
	if len(rec.Draft.Files) > 0 {
		apiError(w, http.StatusBadRequest, "Please remove all files first.")
		return
	}
	latest := s.st.latestPublished(rec.Parent)
	if latest == nil {
		apiError(w, http.StatusNotFound, "The persistent identifier does not exist.")
		return
	}
	now := s.opts.Now().UTC()
	for k, f := range latest.Published.Files {
		cp := *f
		cp.Created, cp.Updated = now, now // an imported file gets new timestamps
		rec.Draft.Files[k] = &cp
	}
	rec.Draft.Updated = now
	if !s.persist(w) {
		return
	}
	writeJSON(w, http.StatusCreated, s.fileListJSON(r, rec, true))
}

// parseQ compiles the subset of the search's query-string syntax (the
// records search's q, Elasticsearch query_string; invenio-records-resources
// services/records/params/querystr.py) that clients send: terms separated
// by spaces, all of which must match (the default operator is AND in
// InvenioRDM's search), each FIELD:VALUE or free text, a VALUE in double
// quotes where it has spaces. Fields: id, parent.id, metadata.title,
// metadata.description and other metadata keys (a value's words must be in
// it, case-insensitive; an unknown field matches nothing); free text is
// looked for in the title and description. Unbalanced quotes or
// parentheses, and a field without value, are the 400 "Invalid query
// string syntax." of the real search.
func parseQ(qs string) (func(parent, id string, rs *recState) bool, bool) {
	qs = strings.TrimSpace(qs)
	if qs == "" {
		return func(string, string, *recState) bool { return true }, true
	}
	if strings.Count(qs, `"`)%2 != 0 || strings.Count(qs, "(") != strings.Count(qs, ")") {
		return nil, false
	}
	var terms []string
	for cur, inQuote, i := "", false, 0; i <= len(qs); i++ {
		if i == len(qs) || qs[i] == ' ' && !inQuote {
			if cur != "" {
				terms = append(terms, cur)
			}
			cur = ""
			continue
		}
		if qs[i] == '"' {
			inQuote = !inQuote
		}
		cur += qs[i : i+1]
	}
	type test func(parent, id string, rs *recState) bool
	var tests []test
	contains := func(have, want string) bool {
		return strings.Contains(strings.ToLower(have), strings.ToLower(strings.Trim(want, `"()`)))
	}
	for _, t := range terms {
		field, value, isField := strings.Cut(t, ":")
		if isField && (field == "" || strings.Trim(value, `"`) == "") {
			return nil, false
		}
		switch {
		case !isField:
			tests = append(tests, func(_, _ string, rs *recState) bool {
				desc, _ := rs.Metadata["description"].(string)
				return contains(rs.Title, t) || contains(desc, t)
			})
		case field == "id":
			tests = append(tests, func(_, id string, _ *recState) bool { return id == strings.Trim(value, `"`) })
		case field == "parent.id":
			tests = append(tests, func(parent, _ string, _ *recState) bool { return parent == strings.Trim(value, `"`) })
		case field == "metadata.title":
			tests = append(tests, func(_, _ string, rs *recState) bool { return contains(rs.Title, value) })
		case strings.HasPrefix(field, "metadata."):
			key := strings.TrimPrefix(field, "metadata.")
			tests = append(tests, func(_, _ string, rs *recState) bool {
				v, _ := rs.Metadata[key].(string)
				return contains(v, value)
			})
		default:
			tests = append(tests, func(string, string, *recState) bool { return false })
		}
	}
	return func(parent, id string, rs *recState) bool {
		for _, t := range tests {
			if !t(parent, id, rs) {
				return false
			}
		}
		return true
	}, true
}
