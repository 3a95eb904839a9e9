package axelortest

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// DMS file tags and MetaFile descriptions: what the mount shows as a
// document's fields (spec §2.1 tags: m2m DMSFileTag {id, code, name,
// style}; §2.2 MetaFile.description; §4.12). DMSFileTag is a normal REST
// model; MetaFile rows are changed with the generic versioned save.

const (
	tagModel  = "com.axelor.dms.db.DMSFileTag"
	metaModel = "com.axelor.meta.db.MetaFile"
)

var bucketTags = []byte("dms_file_tag")

// dmsTag is a DMS_FILE_TAG row; code and name are unique.
type dmsTag struct {
	ID      int64  `json:"id"`
	Version int    `json:"version"`
	Code    string `json:"code"`
	Name    string `json:"name"`
}

func allTags(tx *bolt.Tx) []*dmsTag {
	var out []*dmsTag
	tx.Bucket(bucketTags).ForEach(func(_, v []byte) error {
		t := new(dmsTag)
		if json.Unmarshal(v, t) == nil {
			out = append(out, t)
		}
		return nil
	})
	return out
}

// tagSearch is POST …/DMSFileTag/search: every tag, or those whose name
// is :name with the domain "self.name = :name".
func (s *Server) tagSearch(w http.ResponseWriter, r *http.Request) {
	var req searchRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		failure(w, -1, "Error", "Invalid request: "+err.Error(), nil)
		return
	}
	d := strings.TrimSpace(req.Data.Domain)
	name, byName := req.Data.DomainContext["name"].(string)
	if d != "" && (d != "self.name = :name" || !byName) {
		failure(w, -1, "Error", "Invalid domain: "+d, nil)
		return
	}
	var rows []map[string]any
	s.st.db.View(func(tx *bolt.Tx) error {
		for _, t := range allTags(tx) {
			if d == "" || t.Name == name {
				rows = append(rows, map[string]any{"id": t.ID, "version": t.Version, "code": t.Code, "name": t.Name})
			}
		}
		return nil
	})
	if rows == nil {
		rows = []map[string]any{}
	}
	ok(w, rows, len(rows))
}

// tagSave is PUT …/DMSFileTag: a new tag; a name or code in use is the
// unique constraint's refusal.
func (s *Server) tagSave(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Data struct {
			Code, Name string
		} `json:"data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Data.Name == "" {
		failure(w, -4, "Validation error", "name is required", nil)
		return
	}
	if body.Data.Code == "" {
		body.Data.Code = body.Data.Name
	}
	s.write.Lock()
	defer s.write.Unlock()
	var out *dmsTag
	var dup bool
	err := s.st.db.Update(func(tx *bolt.Tx) error {
		for _, t := range allTags(tx) {
			if t.Name == body.Data.Name || t.Code == body.Data.Code {
				dup = true
				return errRollback
			}
		}
		id, err := nextID(tx, bucketTags)
		if err != nil {
			return err
		}
		out = &dmsTag{ID: id, Code: body.Data.Code, Name: body.Data.Name}
		return putRow(tx, bucketTags, id, out)
	})
	switch {
	case dup:
		failure(w, -1, "Unique constraint violation", "duplicate key value violates unique constraint", nil)
	case err != nil:
		failure(w, -1, "SQL error", err.Error(), nil)
	default:
		ok(w, []map[string]any{{"id": out.ID, "version": out.Version, "code": out.Code, "name": out.Name}}, -1)
	}
}

// tagRefs renders a DMSFile's tags as compact maps.
func tagRefs(tx *bolt.Tx, ids []int64) []any {
	out := []any{}
	for _, id := range ids {
		if t, ok := getRow[dmsTag](tx, bucketTags, id); ok {
			out = append(out, map[string]any{"id": t.ID, "$version": t.Version, "code": t.Code, "name": t.Name})
		}
	}
	return out
}

// metaUpdate is POST …/MetaFile/<id>: the versioned save of a MetaFile's
// description (the only field this server lets change).
func (s *Server) metaUpdate(w http.ResponseWriter, r *http.Request) {
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
	a := s.access(r)
	s.write.Lock()
	defer s.write.Unlock()
	var m *metaFile
	var fail *apiError
	s.st.db.Update(func(tx *bolt.Tx) error {
		var ok bool
		if m, ok = getRow[metaFile](tx, bucketMeta, id); !ok || !a.readMeta(m) {
			fail = &apiError{status: -1, title: "Concurrent updates error", message: "Record was updated or deleted by another transaction.", entityID: id}
			return errRollback
		}
		v, hasVersion := body.Data["version"]
		desc, hasDesc := body.Data["description"]
		if !hasVersion || !hasDesc {
			return nil // nothing applied, as the generic save
		}
		var text string
		if desc != nil {
			text, _ = desc.(string)
		}
		if text == m.Description {
			return nil
		}
		if int(toInt(v)) != m.Version {
			fail = &apiError{status: -1, title: "Concurrent updates error", message: "Record was updated or deleted by another transaction.", entityID: id}
			return errRollback
		}
		m.Description, m.Version, m.UpdatedOn = text, m.Version+1, time.Now()
		return putRow(tx, bucketMeta, id, m)
	})
	if fail != nil {
		fail.write(w)
		return
	}
	ok(w, []map[string]any{{"id": m.ID, "version": m.Version, "fileName": m.FileName, "description": nilIfEmpty(m.Description)}}, -1)
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
