package enaio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/enaio/rpc"
)

// Renditions: enaio converts a document when it is fetched
// (std.StoreInCacheByID's Convert, spec §3.4) — a PDF of any image or
// Windows document, a multi-page TIFF of a black-and-white or colour
// scan — and burns a scan's annotations into its pages on request. What
// a document offers follows from its main type alone, so listing them
// asks the server nothing. Each is fetched whole, once per concurrency
// timestamp, into the same disk cache as documents.
//
// Left out: the COLD documents' "when cold then TIFF" switch of ECMind's
// files(); which documents are COLD is not known from the object
// definition (spec §9.8).

var _ remote.Renditioner = (*Repo)(nil)

// Rendition kinds.
const (
	kindPDF       = "pdf"
	kindTIFF      = "tiff"
	kindAnnotated = "annotated:" // + the file's index in the document
)

// Renditions names what doc converts to: <stem>.pdf for main types 1–4,
// <stem>.tif for 2–3, and per file of an image document (1–3)
// "<name> (annotated).<ext>".
func (r *Repo) Renditions(ctx context.Context, doc remote.Node) ([]remote.Rendition, error) {
	kind, _, id, err := parseID(doc.ID)
	if err != nil || kind != "object" || doc.Kind != remote.KindDocument {
		return nil, nil
	}
	typ, err := r.typeOf(ctx, id)
	if err != nil {
		return nil, err
	}
	_, def, ok := r.typeDef(typ)
	if !ok {
		return nil, nil
	}
	stem := doc.Name
	if len(doc.Files) == 1 {
		stem = strings.TrimSuffix(doc.Files[0].Name, path.Ext(doc.Files[0].Name))
	}
	mt := def.MainType
	var out []remote.Rendition
	if mt >= 1 && mt <= 4 {
		out = append(out, remote.Rendition{Name: stem + ".pdf", Kind: kindPDF})
	}
	if mt == 2 || mt == 3 {
		out = append(out, remote.Rendition{Name: stem + ".tif", Kind: kindTIFF})
	}
	if mt >= 1 && mt <= 3 {
		for i, f := range doc.Files {
			ext := path.Ext(f.Name)
			out = append(out, remote.Rendition{Name: strings.TrimSuffix(f.Name, ext) + " (annotated)" + ext, Kind: kindAnnotated + strconv.Itoa(i)})
		}
	}
	return out, nil
}

// OpenRendition fetches a rendition (all annotated pages at once) unless
// it is cached for token, and reads it from off.
func (r *Repo) OpenRendition(ctx context.Context, doc remote.ID, token, kind string, off int64) (io.ReadCloser, int64, error) {
	k, _, id, err := parseID(doc)
	if err != nil || k != "object" {
		return nil, 0, fmt.Errorf("%w: %s is no document", remote.ErrNotFound, doc)
	}
	var req rpc.Request
	index := 0
	switch {
	case kind == kindPDF:
		req = renditionRequest(id, convertPDF, false)
	case kind == kindTIFF:
		req = renditionRequest(id, convertTIFF, false)
	case strings.HasPrefix(kind, kindAnnotated):
		index, err = strconv.Atoi(strings.TrimPrefix(kind, kindAnnotated))
		if err != nil || index < 0 {
			return nil, 0, fmt.Errorf("%w: rendition %q", remote.ErrNotFound, kind)
		}
		req, kind = renditionRequest(id, 0, true), kindAnnotated
	default:
		return nil, 0, fmt.Errorf("%w: rendition %q", remote.ErrNotFound, kind)
	}
	key := "r:" + strconv.Itoa(id) + ":" + token + ":" + kind
	for try := 0; ; try++ {
		fs, err := r.download(ctx, key, req)
		var f *rpc.Failure
		if errors.As(err, &f) {
			// The server cannot convert this document (a page that is no
			// image, a main type it does not convert): nothing to retry.
			return nil, 0, fmt.Errorf("%w: document %d as %s: %s", remote.ErrUnsupported, id, kind, f.Reply.Message())
		}
		if err != nil {
			return nil, 0, unavailable(err)
		}
		if index >= len(fs) {
			return nil, 0, fmt.Errorf("%w: document %d has no file %d", remote.ErrNotFound, id, index+1)
		}
		rc, err := openPart(fs[index].path, off, -1)
		if errors.Is(err, os.ErrNotExist) && try == 0 {
			continue // evicted between download and open
		}
		return rc, fs[index].size, err
	}
}
