package axelortest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// uploadError answers as the upload endpoint does: a real HTTP status and
// {"error":{"message":…}}.
func uploadError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg}})
}

func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "application/octet-stream" {
		w.WriteHeader(http.StatusUnsupportedMediaType)
		return
	}
	rawName, sizeS, offS := r.Header.Get("X-File-Name"), r.Header.Get("X-File-Size"), r.Header.Get("X-File-Offset")
	if rawName == "" || sizeS == "" || offS == "" {
		// A bare 400 with an empty body (axelor-web FileController:
		// Response.status(BAD_REQUEST).build(); spec §5).
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	name, err := url.QueryUnescape(rawName) // form decoding: '+' is a space
	if err != nil {
		uploadError(w, http.StatusBadRequest, "invalid file name: "+err.Error())
		return
	}
	size, err1 := strconv.ParseInt(sizeS, 10, 64)
	off, err2 := strconv.ParseInt(offS, 10, 64)
	if err1 != nil || err2 != nil || size < 0 || off < 0 {
		uploadError(w, http.StatusBadRequest, "invalid size or offset")
		return
	}
	id := r.Header.Get("X-File-Id")
	if id == "" {
		if off > 0 {
			w.WriteHeader(http.StatusBadRequest) // empty body too
			return
		}
		id = newToken()
	}
	if strings.ContainsAny(id, "/\\") || strings.HasPrefix(id, ".") {
		uploadError(w, http.StatusBadRequest, "invalid X-File-Id")
		return
	}
	path := s.st.uploadPath(id)
	if s.opts.BlockPattern != nil && s.opts.BlockPattern.MatchString(name) {
		os.Remove(path) // a rejected file is deleted, every chunk is checked
		uploadError(w, http.StatusBadRequest, "File name is not allowed: "+name)
		return
	}
	var have int64
	if st, err := os.Stat(path); err == nil {
		have = st.Size()
	}
	if off > size || (off == 0 && have != 0) || (off > 0 && have != off) {
		uploadError(w, http.StatusBadRequest, "Start offset is out of bound.")
		return
	}
	tmp, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		uploadError(w, http.StatusInternalServerError, err.Error())
		return
	}
	n, err := io.Copy(tmp, r.Body)
	tmp.Close()
	if n > s.MaxChunk.Load() {
		s.MaxChunk.Store(n)
	}
	if err != nil {
		os.Remove(path)
		uploadError(w, http.StatusInternalServerError, "upload failed: "+err.Error())
		return
	}
	if off+n != size {
		if off == 0 {
			writeJSON(w, map[string]any{"fileId": id})
		} else {
			writeJSON(w, map[string]any{})
		}
		return
	}
	// Complete: the bytes become a MetaFile.
	s.write.Lock()
	defer s.write.Unlock()
	var m *metaFile
	err = s.st.db.Update(func(tx *bolt.Tx) error {
		mid, err := nextID(tx, bucketMeta)
		if err != nil {
			return err
		}
		m = &metaFile{ID: mid, FileName: name, FilePath: uniquePath(mid, name), FileSize: size,
			FileType: detectType(name), CreatedOn: s.opts.Now(), CreatedBy: s.access(r).user}
		if err := os.Rename(path, s.st.blobPath(m)); err != nil {
			return err
		}
		return putRow(tx, bucketMeta, mid, m)
	})
	if err != nil {
		os.Remove(path)
		uploadError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, map[string]any{"id": m.ID, "version": m.Version, "fileName": m.FileName, "filePath": m.FilePath,
		"storeType": 1, "fileSize": m.FileSize, "fileType": m.FileType, "sizeText": fmt.Sprintf("%.2f KB", float64(m.FileSize)/1000),
		"description": nil, "createdOn": javaTime(m.CreatedOn)})
}

func detectType(name string) string {
	switch {
	case strings.HasSuffix(name, ".txt"):
		return "text/plain"
	case strings.HasSuffix(name, ".pdf"):
		return "application/pdf"
	case strings.HasSuffix(name, ".odt"):
		return "application/vnd.oasis.opendocument.text"
	}
	return "application/octet-stream"
}

func (s *Server) abortUpload(w http.ResponseWriter, r *http.Request) {
	if id := r.PathValue("id"); !strings.ContainsAny(id, "/\\") && !strings.HasPrefix(id, ".") {
		os.Remove(s.st.uploadPath(id))
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	var m *metaFile
	var name string
	a, denied := s.access(r), false
	s.st.db.View(func(tx *bolt.Tx) error {
		f, ok := getRow[dmsFile](tx, bucketFiles, id)
		if !ok || f.IsDirectory || f.MetaFile == 0 {
			return nil // folders would be a ZIP; the mount never asks for one
		}
		if !a.read(tx, f) {
			denied = true // 403 (DmsService.getAttachmentResponse)
			return nil
		}
		name = f.FileName
		m, _ = getRow[metaFile](tx, bucketMeta, f.MetaFile)
		return nil
	})
	if denied {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	if m == nil {
		http.NotFound(w, r)
		return
	}
	fh, err := os.Open(s.st.blobPath(m))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer fh.Close()
	w.Header().Set("Content-Type", detectType(name))
	w.Header().Set("Content-Transfer-Encoding", "binary")
	size := m.FileSize
	start, end, partial := parseRange(r.Header.Get("Range"), size)
	if s.opts.NoRange {
		partial = false
	}
	if partial && start >= size {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", size))
		w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
		return
	}
	if !partial {
		start, end = 0, size-1
		w.Header().Set("Content-Disposition", "attachment; filename=\""+url.PathEscape(name)+"\"")
	}
	// Content-Length comes from the requested end, unclamped, as RESTEasy
	// computes it; a client must clamp the end itself.
	length := end - start + 1
	w.Header().Set("Content-Length", strconv.FormatInt(max(length, 0), 10))
	if partial {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, size))
		w.WriteHeader(http.StatusPartialContent)
	}
	// A LimitedReader over the file lets net/http use sendfile.
	if _, err := fh.Seek(start, io.SeekStart); err != nil {
		return
	}
	n, _ := io.Copy(w, io.LimitReader(fh, max(min(end+1, size)-start, 0)))
	s.BytesServed.Add(n)
}

// parseRange reads a single range "bytes=a-b", "bytes=a-" or "bytes=-n";
// anything else (several ranges, malformed) means the whole file.
func parseRange(h string, size int64) (start, end int64, ok bool) {
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false
	}
	a, b, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false
	}
	if a == "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			return 0, 0, false
		}
		return max(size-n, 0), size - 1, true
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 {
		return 0, 0, false
	}
	if b == "" {
		return start, size - 1, true
	}
	end, err = strconv.ParseInt(b, 10, 64)
	if err != nil || end < start {
		return 0, 0, false
	}
	return start, end, true
}
