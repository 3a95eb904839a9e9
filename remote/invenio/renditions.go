package invenio

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"

	"github.com/dmsfs/dmsfs/remote"
)

// Renditions of image files through the server's IIIF Image API
// (invenio-rdm-records resources/iiif.py, route "image_api"): a record's
// image file img.tif shows as .renditions/img.tif/img.jpg and img.png,
// the whole image converted by the server. Each is fetched whole once per
// (file, token, format) into CacheDir, kept with the whole downloads.

var _ remote.Renditioner = (*Repo)(nil)

// iiifImages are the extensions of files the IIIF API converts (upstream
// IIIF_FORMATS).
var iiifImages = map[string]bool{".gif": true, ".jp2": true, ".jpeg": true, ".jpg": true, ".png": true, ".tif": true, ".tiff": true}

// Renditions names a JPEG and a PNG of an image file.
func (r *Repo) Renditions(ctx context.Context, doc remote.Node) ([]remote.Rendition, error) {
	f, ok := r.resolve(doc.ID)
	if !ok || f.kind != 'f' || doc.Kind != remote.KindDocument || len(doc.Files) != 1 {
		return nil, nil
	}
	name := doc.Files[0].Name
	ext := path.Ext(name)
	if !iiifImages[strings.ToLower(ext)] {
		return nil, nil
	}
	stem := strings.TrimSuffix(name, ext)
	return []remote.Rendition{{Name: stem + ".jpg", Kind: "jpg"}, {Name: stem + ".png", Kind: "png"}}, nil
}

// OpenRendition reads an image file converted by the server, from off.
func (r *Repo) OpenRendition(ctx context.Context, doc remote.ID, token, kind string, off int64) (io.ReadCloser, int64, error) {
	f, ok := r.resolve(doc)
	if !ok || f.kind != 'f' || (kind != "jpg" && kind != "png") {
		return nil, 0, fmt.Errorf("%w: rendition %q of %s", remote.ErrNotFound, kind, doc)
	}
	rec, err := r.working(ctx, f.parent, true)
	if err != nil {
		return nil, 0, err
	}
	typ := "record"
	if rec.IsDraft {
		typ = "draft"
	}
	u := r.base.String() + "/api/iiif/" + url.PathEscape(typ+":"+rec.ID+":"+f.key) + "/full/full/0/default." + kind
	wf, err := r.whole.get(ctx, "rendition\x00"+string(doc)+"\x00"+token+"\x00"+kind, -1, func(ctx context.Context, w io.Writer) error {
		resp, err := r.get(ctx, u, nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusBadRequest {
			// The server cannot convert it (no image it reads).
			return fmt.Errorf("%w: %w", remote.ErrUnsupported, errorFrom(resp))
		}
		if resp.StatusCode != http.StatusOK {
			return errorFrom(resp)
		}
		if _, err := io.Copy(w, resp.Body); err != nil {
			return fmt.Errorf("%w: %w", remote.ErrUnavailable, err)
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	fh, err := os.Open(wf.path)
	if err != nil {
		return nil, 0, err
	}
	return limitedBody{io.NewSectionReader(fh, off, max(wf.size-off, 0)), fh}, wf.size, nil
}
