package inveniotest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func (s *Server) fileURL(r *http.Request, rec *record, draft bool, key string) string {
	b := s.base(r) + "/api/records/" + rec.ID
	if draft {
		b += "/draft"
	}
	// Keys keep a raw "/" in links (the routes take <path:key>,
	// invenio_records_resources/resources/files/config.py).
	parts := strings.Split(key, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return b + "/files/" + strings.Join(parts, "/")
}

// fileRoute splits what follows /files/ in a path (segments unescaped)
// into the key, which may hold "/", and what is asked of it: nothing,
// "content", "content" and a part number, or "commit".
func fileRoute(seg []string) []string {
	n := len(seg)
	switch {
	case n >= 2 && seg[n-1] == "commit":
		return []string{strings.Join(seg[:n-1], "/"), "commit"}
	case n >= 3 && seg[n-2] == "content" && isNumber(seg[n-1]):
		return []string{strings.Join(seg[:n-2], "/"), "content", seg[n-1]}
	case n >= 2 && seg[n-1] == "content":
		return []string{strings.Join(seg[:n-1], "/"), "content"}
	case n >= 1 && seg[0] != "":
		return []string{strings.Join(seg, "/")}
	}
	return nil
}

func isNumber(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}

func (s *Server) fileJSON(r *http.Request, rec *record, draft bool, f *fileEntry) map[string]any {
	self := s.fileURL(r, rec, draft, f.Key)
	links := map[string]any{"self": self}
	transfer := map[string]any{"type": f.Transfer}
	if f.Transfer == "M" && f.Status == "pending" {
		transfer["parts"] = f.Parts
		transfer["part_size"] = f.PartSize
		var parts []any
		// Local part URLs live 14 days (MultipartStorageExt.multipart_links).
		exp := s.opts.Now().Add(14 * 24 * time.Hour).UTC().Format(isoTime)
		for n := 1; n <= f.Parts; n++ {
			u := self + "/content/" + strconv.Itoa(n)
			if s.opts.S3 {
				u = s.sign("/part/" + f.Blob + "/" + strconv.Itoa(n))
			}
			parts = append(parts, map[string]any{"part": n, "url": u, "expiration": exp})
		}
		links["parts"] = parts
	} else {
		links["content"] = self + "/content"
	}
	if draft {
		// Every draft entry has one, committed or not (upstream
		// FileLink "commit" in services/files/config.py).
		links["commit"] = self + "/commit"
	}
	out := map[string]any{"key": f.Key, "status": f.Status, "transfer": transfer, "storage_class": "L",
		"created": f.Created.Format(isoTime), "updated": f.Updated.Format(isoTime), "metadata": metadataOf(f),
		"access": map[string]any{"hidden": false}, "links": links, "file_id": f.Blob, "bucket_id": rec.ID}
	if f.Status == "completed" {
		out["size"] = f.Size
		out["checksum"] = f.Checksum
		if f.Checksum == "" {
			out["checksum"] = nil // until the background task computed it
		}
		out["mimetype"] = "application/octet-stream"
	} else if f.Size > 0 {
		out["size"] = f.Size
	}
	return out
}

func (s *Server) fileListJSON(r *http.Request, rec *record, draft bool) map[string]any {
	rs := rec.Published
	if draft {
		rs = rec.Draft
	}
	var entries []any
	for _, k := range rs.sortedKeys() {
		entries = append(entries, s.fileJSON(r, rec, draft, rs.Files[k]))
	}
	if entries == nil {
		entries = []any{}
	}
	self := s.base(r) + "/api/records/" + rec.ID
	if draft {
		self += "/draft"
	}
	return map[string]any{"enabled": true, "entries": entries, "default_preview": nil, "order": []string{},
		"links": map[string]any{"self": self + "/files"}}
}

// files handles /api/records/{id}[/draft]/files[/{key}[/content[/{n}]|/commit]].
func (s *Server) files(w http.ResponseWriter, r *http.Request, id string, draft bool, seg []string) {
	if draft {
		if _, ok := s.requireUser(w, r); !ok {
			return
		}
	}
	// Content uploads are read before taking the lock.
	if draft && r.Method == http.MethodPut && len(seg) >= 2 && seg[1] == "content" {
		if len(seg) == 3 {
			s.localPart(w, r, id, seg[0], seg[2])
		} else {
			s.putContent(w, r, id, seg[0])
		}
		return
	}
	s.mu.Lock()
	rec, ok := s.lookup(w, r, id, draft)
	if !ok {
		s.mu.Unlock()
		return
	}
	rs := rec.Published
	if draft {
		rs = rec.Draft
	}
	if len(seg) == 0 {
		defer s.mu.Unlock()
		switch {
		case r.Method == http.MethodGet:
			writeJSON(w, http.StatusOK, s.fileListJSON(r, rec, draft))
		case r.Method == http.MethodPost && draft:
			s.initFiles(w, r, rec)
		case r.Method == http.MethodDelete && draft:
			if rs.Locked {
				apiError(w, http.StatusForbidden, "Bucket is locked for modifications.")
				return
			}
			// delete_all_files commits the record too: revision_id
			// moves on (services/files/service.py).
			rs.Files = map[string]*fileEntry{}
			rs.Revision++
			rs.Updated = s.opts.Now().UTC()
			if s.persist(w) {
				w.WriteHeader(http.StatusNoContent)
			}
		default:
			apiError(w, http.StatusMethodNotAllowed, "The method is not allowed for the requested URL.")
		}
		return
	}
	f := rs.Files[seg[0]]
	if f == nil {
		s.mu.Unlock()
		apiError(w, http.StatusNotFound, "File with key "+seg[0]+" not found.")
		return
	}
	switch {
	case len(seg) == 1 && r.Method == http.MethodGet:
		defer s.mu.Unlock()
		writeJSON(w, http.StatusOK, s.fileJSON(r, rec, draft, f))
	case len(seg) == 1 && r.Method == http.MethodPut && draft:
		// Update of a draft file's metadata: the dict given replaces the
		// one there (DraftFileService.update_file_metadata;
		// nrp-cmd files.update sends {"metadata": …} only).
		defer s.mu.Unlock()
		if rs.Locked {
			apiError(w, http.StatusForbidden, "Bucket is locked for modifications.")
			return
		}
		var body map[string]json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			apiError(w, http.StatusBadRequest, "Could not parse the request body: "+err.Error())
			return
		}
		for k := range body {
			if k != "metadata" && k != "access" {
				validationError(w, k, "Unknown field.")
				return
			}
		}
		if raw, ok := body["metadata"]; ok {
			var md map[string]any
			if err := json.Unmarshal(raw, &md); err != nil {
				validationError(w, "metadata", "Not a valid mapping type.")
				return
			}
			f.Metadata = md
		}
		f.Updated = s.opts.Now().UTC()
		if s.persist(w) {
			writeJSON(w, http.StatusOK, s.fileJSON(r, rec, draft, f))
		}
	case len(seg) == 1 && r.Method == http.MethodDelete && draft:
		defer s.mu.Unlock()
		if rs.Locked {
			apiError(w, http.StatusForbidden, "Bucket is locked for modifications.")
			return
		}
		delete(rs.Files, f.Key)
		// Upstream DraftFileService.delete_file registers a
		// RecordCommitOp of the record (invenio_records_resources/
		// services/files/service.py): the draft's revision_id moves on.
		rs.Revision++
		rs.Updated = s.opts.Now().UTC()
		if s.persist(w) {
			w.WriteHeader(http.StatusNoContent)
		}
	case len(seg) == 2 && seg[1] == "commit" && r.Method == http.MethodPost && draft:
		s.commit(w, r, rec, f) // unlocks
	case len(seg) == 2 && seg[1] == "content" && r.Method == http.MethodGet:
		if f.Status != "completed" || f.Transfer != "L" {
			s.mu.Unlock()
			apiError(w, http.StatusForbidden, "Permission denied.")
			return
		}
		blob := f.Blob
		checksum, updated := f.Checksum, f.Updated
		s.mu.Unlock()
		if s.opts.S3 {
			http.Redirect(w, r, s.sign("/blob/"+blob), http.StatusFound)
			return
		}
		w.Header().Set("ETag", strconv.Quote(checksum))
		w.Header().Set("Content-MD5", strings.TrimPrefix(checksum, "md5:"))
		w.Header().Set("Last-Modified", updated.UTC().Format(http.TimeFormat))
		s.serveBlob(w, r, blob, s.opts.Range)
	default:
		s.mu.Unlock()
		apiError(w, http.StatusMethodNotAllowed, "The method is not allowed for the requested URL.")
	}
}

// serveBlob sends a blob, honouring Range only when ranges is set (without
// it, Invenio ignores the header and answers 200 with the whole file).
func (s *Server) serveBlob(w http.ResponseWriter, r *http.Request, blob string, ranges bool) {
	f, err := os.Open(filepath.Join(s.dir, "blobs", filepath.Base(blob)))
	if err != nil {
		apiError(w, http.StatusNotFound, "File not found.")
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		apiError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if !ranges {
		r.Header.Del("Range")
	} else {
		w.Header().Set("Accept-Ranges", "bytes")
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	cw := &countingWriter{ResponseWriter: w}
	http.ServeContent(cw, r, "", st.ModTime(), f)
	s.mu.Lock()
	s.served += cw.n
	s.mu.Unlock()
}

type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

// initFiles starts uploads: POST of a JSON array of {key, size, transfer…}.
// The caller holds s.mu.
func (s *Server) initFiles(w http.ResponseWriter, r *http.Request, rec *record) {
	if rec.Draft.Locked {
		apiError(w, http.StatusForbidden, "Bucket is locked for modifications.")
		return
	}
	var items []map[string]json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&items); err != nil {
		apiError(w, http.StatusBadRequest, "Could not parse the request body: "+err.Error())
		return
	}
	if len(items) == 0 {
		apiError(w, http.StatusBadRequest, "No files to upload.")
		return
	}
	if len(rec.Draft.Files)+len(items) > s.opts.MaxFiles {
		apiError(w, http.StatusBadRequest, "Uploading selected files will result in exceeding the max amount per record.")
		return
	}
	now := s.opts.Now().UTC()
	var added []*fileEntry
	for _, it := range items {
		allowed := map[string]bool{"key": true, "size": true, "checksum": true, "storage_class": true, "transfer": true, "metadata": true, "access": true}
		for k := range it {
			if !allowed[k] && !s.opts.NoMultipart { // v13+: unknown=RAISE
				validationError(w, k, "Unknown field.")
				return
			}
		}
		var key, checksum string
		var size int64
		var metadata map[string]any
		var tr struct {
			Type     string `json:"type"`
			Parts    int    `json:"parts"`
			PartSize int64  `json:"part_size"`
		}
		if json.Unmarshal(it["key"], &key) != nil || key == "" {
			validationError(w, "key", "Missing data for required field.")
			return
		}
		if raw, ok := it["size"]; ok && json.Unmarshal(raw, &size) != nil {
			validationError(w, "size", "Not a valid integer.")
			return
		}
		if raw, ok := it["checksum"]; ok && json.Unmarshal(raw, &checksum) != nil {
			validationError(w, "checksum", "Not a valid string.")
			return
		}
		if raw, ok := it["metadata"]; ok && json.Unmarshal(raw, &metadata) != nil {
			validationError(w, "metadata", "Not a valid mapping type.")
			return
		}
		if raw, ok := it["transfer"]; ok && json.Unmarshal(raw, &tr) != nil {
			validationError(w, "transfer", "Invalid transfer.")
			return
		}
		if _, dup := rec.Draft.Files[key]; dup {
			apiError(w, http.StatusBadRequest, fmt.Sprintf("File with key %s already exists.", key))
			return
		}
		f := &fileEntry{Key: key, Status: "pending", Transfer: "L", Size: size, Blob: s.st.newID() + "-" + s.st.newID(), Created: now, Updated: now, Metadata: metadata}
		if tr.Type == "M" && !s.opts.NoMultipart {
			switch {
			case size <= 0 || tr.Parts < 1 || tr.Parts > 10000:
				validationError(w, "transfer.parts", "Invalid number of parts or size.")
				return
			case tr.PartSize <= 0 || int64(tr.Parts-1)*tr.PartSize >= size || int64(tr.Parts)*tr.PartSize < size:
				validationError(w, "transfer.part_size", "Part size does not match the size and number of parts.")
				return
			}
			f.Transfer, f.Parts, f.PartSize, f.Got = "M", tr.Parts, tr.PartSize, map[int]bool{}
			f.InitChecksum = checksum
			// Multipart content is written in place into a preallocated file.
			b, err := os.Create(filepath.Join(s.dir, "blobs", f.Blob))
			if err == nil {
				err = b.Truncate(size)
				b.Close()
			}
			if err != nil {
				apiError(w, http.StatusInternalServerError, err.Error())
				return
			}
		}
		added = append(added, f)
	}
	for _, f := range added {
		rec.Draft.Files[f.Key] = f
	}
	rec.Draft.Updated = now
	if !s.persist(w) {
		return
	}
	writeJSON(w, http.StatusCreated, s.fileListJSON(r, rec, true))
}

// pendingEntry finds a draft's pending file for a content upload, under s.mu.
func (s *Server) pendingEntry(w http.ResponseWriter, r *http.Request, id, key string) (*record, *fileEntry, bool) {
	rec, ok := s.lookup(w, r, id, true)
	if !ok {
		return nil, nil, false
	}
	if rec.Draft.Locked {
		apiError(w, http.StatusForbidden, "Bucket is locked for modifications.")
		return nil, nil, false
	}
	f := rec.Draft.Files[key]
	if f == nil {
		// Upstream fails on the missing file record without handling
		// it: a content PUT to a key never initialised answers 500.
		apiError(w, http.StatusInternalServerError, "The server encountered an internal error and was unable to complete your request.")
		return nil, nil, false
	}
	return rec, f, true
}

// putContent stores the content of a pending single-upload file. Like
// Invenio, a transfer error (a committed file, a broken stream) deletes the
// file entry and still answers 200, with "errors" in the body.
func (s *Server) putContent(w http.ResponseWriter, r *http.Request, id, key string) {
	if r.Header.Get("Content-Type") != "application/octet-stream" {
		apiError(w, http.StatusUnsupportedMediaType, "Invalid 'Content-Type' header. Expected 'application/octet-stream'.")
		return
	}
	if r.ContentLength < 0 {
		// A body of unknown length (chunked) is refused in front of
		// Invenio: Ceph RadosGW answers S3's MissingContentLength, 411
		// (nrp-cmd commit 10101b1, "Radosgw requires it"; spec §1.3).
		http.Error(w, "MissingContentLength", http.StatusLengthRequired)
		return
	}
	s.mu.Lock()
	rec, f, ok := s.pendingEntry(w, r, id, key)
	if !ok {
		s.mu.Unlock()
		return
	}
	if f.Status != "pending" || f.Transfer != "L" {
		s.dropEntry(rec, f)
		s.mu.Unlock()
		s.uploadFailed(w, r, rec, f)
		return
	}
	blob := f.Blob
	s.mu.Unlock()
	n, sum, err := writeBlob(s.dir, blob, r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec.Draft == nil || rec.Draft.Files[key] != f {
		apiError(w, http.StatusNotFound, "File with key "+key+" not found.")
		return
	}
	if err != nil || (r.ContentLength >= 0 && n != r.ContentLength) {
		s.dropEntry(rec, f)
		s.persist(w)
		s.writeUploadFailed(w, r, rec, f)
		return
	}
	f.Size, f.Checksum = n, "md5:"+sum
	f.Updated = s.opts.Now().UTC()
	if s.persist(w) {
		writeJSON(w, http.StatusOK, s.fileJSON(r, rec, true, f))
	}
}

// failedUpload is the injected "upload transfer failed": the body is read
// (and thrown away), the entry deleted, and the answer is 200 with errors.
func (s *Server) failedUpload(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	seg := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/api/records/"), "/")
	for i := range seg {
		seg[i], _ = url.PathUnescape(seg[i])
	}
	var fr []string
	if len(seg) >= 4 {
		fr = fileRoute(seg[3:])
	}
	if len(fr) < 2 {
		apiError(w, http.StatusNotFound, "not found")
		return
	}
	key := fr[0]
	s.mu.Lock()
	rec, f, ok := s.pendingEntry(w, r, seg[0], key)
	if !ok {
		s.mu.Unlock()
		return
	}
	s.dropEntry(rec, f)
	s.mu.Unlock()
	s.uploadFailed(w, r, rec, f)
}

// dropEntry removes a file entry after a failed transfer; under s.mu.
func (s *Server) dropEntry(rec *record, f *fileEntry) {
	delete(rec.Draft.Files, f.Key)
}

func (s *Server) uploadFailed(w http.ResponseWriter, r *http.Request, rec *record, f *fileEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.persist(w)
	s.writeUploadFailed(w, r, rec, f)
}

func (s *Server) writeUploadFailed(w http.ResponseWriter, r *http.Request, rec *record, f *fileEntry) {
	out := s.fileJSON(r, rec, true, f)
	out["errors"] = "File upload transfer failed."
	writeJSON(w, http.StatusOK, out)
}

// localPart stores part n of a multipart transfer on local storage.
func (s *Server) localPart(w http.ResponseWriter, r *http.Request, id, key, part string) {
	s.mu.Lock()
	_, f, ok := s.pendingEntry(w, r, id, key)
	s.mu.Unlock()
	if !ok {
		return
	}
	// The answer is the whole file entry, as for the single content PUT
	// (FileResource.upload_multipart_content → read_file).
	s.writePart(w, r, f, part, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		rec, ok := s.st.Records[id]
		if !ok || rec.Draft == nil || rec.Draft.Files[key] != f {
			apiError(w, http.StatusNotFound, "File with key "+key+" not found.")
			return
		}
		writeJSON(w, http.StatusOK, s.fileJSON(r, rec, true, f))
	})
}

// s3Part stores a part sent to a pre-signed URL: /part/<blob>/<n>.
func (s *Server) s3Part(w http.ResponseWriter, r *http.Request, rest string) {
	blob, part, ok := strings.Cut(rest, "/")
	if !ok {
		s3Error(w, http.StatusNotFound, "NoSuchUpload", "The specified upload does not exist.")
		return
	}
	s.mu.Lock()
	var found *fileEntry
	for _, rec := range s.st.Records {
		if rec.Draft == nil {
			continue
		}
		for _, f := range rec.Draft.Files {
			if f.Blob == blob && f.Transfer == "M" && f.Status == "pending" {
				found = f
			}
		}
	}
	s.mu.Unlock()
	if found == nil {
		s3Error(w, http.StatusNotFound, "NoSuchUpload", "The specified upload does not exist.")
		return
	}
	s.writePart(w, r, found, part, func() {
		w.Header().Set("ETag", `"`+blob+"-"+part+`"`)
		w.WriteHeader(http.StatusOK)
	})
}

func (s *Server) writePart(w http.ResponseWriter, r *http.Request, f *fileEntry, part string, done func()) {
	n, err := strconv.Atoi(part)
	s.mu.Lock()
	parts, partSize, blob := f.Parts, f.PartSize, f.Blob
	s.mu.Unlock()
	if err != nil || n < 1 || n > parts || f.Transfer != "M" {
		apiError(w, http.StatusBadRequest, "Invalid part number.")
		return
	}
	// Only parts before the last are checked (MultipartStorageExt.
	// multipart_set_content); the last may be anything that fits.
	if n < parts && r.ContentLength != partSize {
		apiError(w, http.StatusBadRequest, "Size of this part must be equal to part_size sent in multipart initialization.")
		return
	}
	if r.ContentLength < 0 {
		http.Error(w, "MissingContentLength", http.StatusLengthRequired) // as for content PUTs
		return
	}
	want := r.ContentLength
	out, err := os.OpenFile(filepath.Join(s.dir, "blobs", blob), os.O_WRONLY, 0)
	if err != nil {
		apiError(w, http.StatusInternalServerError, err.Error())
		return
	}
	written, err := io.Copy(io.NewOffsetWriter(out, int64(n-1)*partSize), io.LimitReader(r.Body, want))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil || written != want {
		apiError(w, http.StatusBadRequest, "Part upload incomplete.")
		return
	}
	s.mu.Lock()
	f.Got[n] = true
	s.mu.Unlock()
	done()
}

// commit completes a pending file; it is called with s.mu held and
// releases it.
func (s *Server) commit(w http.ResponseWriter, r *http.Request, rec *record, f *fileEntry) {
	defer s.mu.Unlock()
	if f.Status != "pending" {
		apiError(w, http.StatusBadRequest, "File is already committed.")
		return
	}
	if f.Transfer == "M" {
		for n := 1; n <= f.Parts; n++ {
			if !f.Got[n] {
				apiError(w, http.StatusInternalServerError, "Not all parts were uploaded")
				return
			}
		}
		sum, err := blobMD5(filepath.Join(s.dir, "blobs", f.Blob))
		if err != nil {
			apiError(w, http.StatusInternalServerError, err.Error())
			return
		}
		// Upstream MultipartTransfer.commit_file
		// (invenio_records_resources/services/files/transfer/providers/
		// multipart.py): a checksum given at init is kept as it is,
		// unverified, and nothing recomputes it. Without one, local
		// storage commits with none (null) and S3 with its ETag
		// ("multipart:…"); recompute_multipart_checksum_task (files/
		// tasks.py) fills in the md5 later, in the background.
		f.Transfer, f.Got = "L", nil
		switch {
		case f.InitChecksum != "":
			f.Checksum = f.InitChecksum
		case s.opts.S3:
			f.Checksum = fmt.Sprintf("multipart:%s-%d-%d", f.Blob, f.Parts, f.PartSize)
			go s.fixChecksum(f, "md5:"+sum)
		default:
			f.Checksum = ""
			go s.fixChecksum(f, "md5:"+sum)
		}
	} else if f.Checksum == "" {
		// Upstream's commit of content never sent fails inside the
		// storage layer: an unhandled error, 500.
		apiError(w, http.StatusInternalServerError, "The server encountered an internal error and was unable to complete your request.")
		return
	}
	f.Status = "completed"
	f.Updated = s.opts.Now().UTC()
	rec.Draft.Updated = f.Updated
	if s.persist(w) {
		writeJSON(w, http.StatusOK, s.fileJSON(r, rec, true, f))
	}
}

func (s *Server) fixChecksum(f *fileEntry, sum string) {
	d := s.opts.ChecksumDelay
	if d < 0 {
		return
	}
	if d == 0 {
		d = 200 * time.Millisecond
	}
	time.Sleep(d) // the background task's run time
	s.mu.Lock()
	defer s.mu.Unlock()
	f.Checksum = sum
	s.dirty = true
	s.flush()
}

// metadataOf is an entry's metadata as the API shows it ({} when none).
func metadataOf(f *fileEntry) map[string]any {
	if f.Metadata == nil {
		return map[string]any{}
	}
	return f.Metadata
}
