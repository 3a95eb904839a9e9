package inveniotest

import (
	"bytes"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	_ "golang.org/x/image/tiff" // decodes TIFF uploads
)

// The IIIF Image API of InvenioRDM (invenio-rdm-records
// resources/iiif.py, IIIFResourceConfig.routes "image_api"):
//
//	GET /api/iiif/<type>:<record id>:<file key>/<region>/<size>/<rotation>/<quality>.<format>
//
// type "record" reads the published record, "draft" the draft (its
// owner only). This server renders the whole image as it is: region
// full, size full or max, rotation 0, quality default, formats gif, jpg
// and png (its supported_formats but the ones Go cannot write); anything
// else is 400, an unknown record or file 404, a file that is no image 400.
func (s *Server) iiif(w http.ResponseWriter, r *http.Request, rest string) {
	seg := strings.Split(rest, "/")
	if len(seg) != 5 || r.Method != http.MethodGet {
		apiError(w, http.StatusNotFound, "The requested URL was not found on the server.")
		return
	}
	uuid, err := url.PathUnescape(seg[0])
	if err != nil {
		apiError(w, http.StatusBadRequest, "Invalid identifier.")
		return
	}
	typ, rest, _ := strings.Cut(uuid, ":")
	id, key, ok := strings.Cut(rest, ":")
	if !ok || (typ != "record" && typ != "draft") {
		apiError(w, http.StatusBadRequest, "Invalid identifier: "+uuid)
		return
	}
	quality, format, _ := strings.Cut(seg[4], ".")
	switch {
	case seg[1] != "full", seg[2] != "full" && seg[2] != "max", seg[3] != "0", quality != "default":
		apiError(w, http.StatusBadRequest, "Unsupported region, size, rotation or quality.")
		return
	case format != "jpg" && format != "png" && format != "gif":
		apiError(w, http.StatusBadRequest, "Unsupported image format: "+format)
		return
	}
	if typ == "draft" {
		if _, ok := s.requireUser(w, r); !ok {
			return
		}
	}
	s.mu.Lock()
	rec := s.st.Records[id]
	var st *recState
	if rec != nil {
		st = rec.Published
		if typ == "draft" {
			st = rec.Draft
		}
	}
	var f *fileEntry
	if st != nil {
		f = st.Files[key]
	}
	if f == nil || f.Status != "completed" {
		s.mu.Unlock()
		apiError(w, http.StatusNotFound, "File with key "+key+" not found.")
		return
	}
	blob := f.Blob
	s.mu.Unlock()
	data, err := os.ReadFile(filepath.Join(s.dir, "blobs", filepath.Base(blob)))
	if err != nil {
		apiError(w, http.StatusNotFound, "File not found.")
		return
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		apiError(w, http.StatusBadRequest, "The file is not an image: "+err.Error())
		return
	}
	var out bytes.Buffer
	mime := "image/" + format
	switch format {
	case "jpg":
		mime = "image/jpeg"
		err = jpeg.Encode(&out, img, nil)
	case "png":
		err = png.Encode(&out, img)
	default:
		err = gif.Encode(&out, img, nil)
	}
	if err != nil {
		apiError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", mime)
	_, _ = w.Write(out.Bytes())
}
