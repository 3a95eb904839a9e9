package axelortest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// What an ordinary (non-admin) user may do, as Axelor's DMS decides it
// (spec §1.5; axelor-core com/axelor/auth/AuthSecurity.java, axelor-dms
// DMSFileRepository.validate/canCreate and the conditional permissions
// perm.dms.file.__self__/__read__/__write__/__full__ it creates):
//   - "admin" and Options.Admins bypass every check;
//   - a user reads, changes and removes what they created, and what a
//     DMSPermission row shares with them (READ: read; WRITE and FULL:
//     also change and remove); this server lets a share of a folder cover
//     what lies below it (a modelling choice: upstream copies the rows to
//     the children it creates);
//   - creating or moving into a folder needs: the user created it, or it
//     has no DMSPermission row at all, or one gives the user WRITE/FULL;
//     the root is open to all;
//   - MetaFiles are readable by whoever created them.
// Unreadable rows are left out of searches (so a READ denial is status 0
// with no data), downloads of them answer 403, refused changes status -1
// "Access error".

var bucketPerms = []byte("dms_permission")

// dmsPermission is a DMS_PERMISSION row: file shared with user.
type dmsPermission struct {
	ID    int64  `json:"id"`
	File  int64  `json:"file"`
	User  string `json:"user"`
	Value string `json:"value"` // READ, WRITE, FULL
}

// Share gives user READ, WRITE or FULL access to a node (and, on this
// server, what lies below it), as a DMSPermission row does.
func (s *Server) Share(file int64, user, value string) error {
	if !slices.Contains([]string{"READ", "WRITE", "FULL"}, value) {
		return fmt.Errorf("axelortest: permission %q is none of READ, WRITE, FULL", value)
	}
	s.write.Lock()
	defer s.write.Unlock()
	return s.st.db.Update(func(tx *bolt.Tx) error {
		id, err := nextID(tx, bucketPerms)
		if err != nil {
			return err
		}
		return putRow(tx, bucketPerms, id, dmsPermission{ID: id, File: file, User: user, Value: value})
	})
}

// access is who asks.
type access struct {
	user  string
	admin bool
}

func (s *Server) access(r *http.Request) access {
	u, _ := s.user(r)
	return access{user: u, admin: u == "admin" || s.opts.Admins[u]}
}

// perms are the DMSPermission rows of one node.
func perms(tx *bolt.Tx, file int64) []dmsPermission {
	var out []dmsPermission
	tx.Bucket(bucketPerms).ForEach(func(_, v []byte) error {
		var p dmsPermission
		if json.Unmarshal(v, &p) == nil && p.File == file {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// shared tells whether a row of f or of a folder above it gives the user
// one of values.
func (a access) shared(tx *bolt.Tx, f *dmsFile, values ...string) bool {
	for x, depth := f, 0; x != nil && depth < 100; depth++ {
		for _, p := range perms(tx, x.ID) {
			if p.User == a.user && slices.Contains(values, p.Value) {
				return true
			}
		}
		if x.Parent == 0 {
			break
		}
		x, _ = getRow[dmsFile](tx, bucketFiles, x.Parent)
	}
	return false
}

func (a access) read(tx *bolt.Tx, f *dmsFile) bool {
	return a.admin || f.CreatedBy == a.user || a.shared(tx, f, "READ", "WRITE", "FULL")
}

// write is the right to change and to remove.
func (a access) write(tx *bolt.Tx, f *dmsFile) bool {
	return a.admin || f.CreatedBy == a.user || a.shared(tx, f, "WRITE", "FULL")
}

// createIn is the right to create in or move into folder (0: the root).
func (a access) createIn(tx *bolt.Tx, folder int64) bool {
	if a.admin || folder == 0 {
		return true
	}
	f, ok := getRow[dmsFile](tx, bucketFiles, folder)
	if !ok {
		return false
	}
	return f.CreatedBy == a.user || len(perms(tx, folder)) == 0 || a.shared(tx, f, "WRITE", "FULL")
}

func (a access) readMeta(m *metaFile) bool { return a.admin || m.CreatedBy == a.user }

// permsEndpoint is GET R/perms?id=<id>[&action=<a>]: without an action the
// access types the user has on the record; with one, status 0 if allowed
// and -4 otherwise (axelor-core Resource.perms).
func (s *Server) permsEndpoint(w http.ResponseWriter, r *http.Request) {
	a := s.access(r)
	id := toInt(r.URL.Query().Get("id"))
	var rights []string
	s.st.db.View(func(tx *bolt.Tx) error {
		f, ok := getRow[dmsFile](tx, bucketFiles, id)
		if !ok {
			return nil
		}
		if a.read(tx, f) {
			rights = append(rights, "READ", "EXPORT")
		}
		if a.write(tx, f) {
			rights = append(rights, "WRITE", "REMOVE")
		}
		if f.IsDirectory && a.createIn(tx, f.ID) {
			rights = append(rights, "CREATE")
		}
		return nil
	})
	action := r.URL.Query().Get("action")
	if action == "" {
		writeJSON(w, map[string]any{"status": 0, "data": rights})
		return
	}
	want := map[string]string{"read": "READ", "write": "WRITE", "remove": "REMOVE", "create": "CREATE", "export": "EXPORT"}[action]
	if slices.Contains(rights, want) {
		writeJSON(w, map[string]any{"status": 0})
		return
	}
	writeJSON(w, map[string]any{"status": -4, "errors": map[string]any{"message": "You are not authorized to " + action + " this resource."}})
}

func accessError(message string) *apiError {
	return &apiError{status: -1, title: "Access error", message: message}
}
