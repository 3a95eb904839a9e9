package invenio

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sync/singleflight"

	"github.com/dmsfs/dmsfs/remote"
)

// Renditions of image files through the server's IIIF Image API
// (invenio-rdm-records resources/iiif.py, route "image_api"): a record's
// image file img.tif shows as .renditions/img.tif/img.jpg and img.png,
// the whole image converted by the server. Each is fetched whole once per
// (file, token, format) into CacheDir.

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
	p, size, err := r.renditions.get(ctx, string(doc)+"\x00"+token+"\x00"+kind, func(w io.Writer) error {
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
	fh, err := os.Open(p)
	if err != nil {
		return nil, 0, err
	}
	return limitedBody{io.NewSectionReader(fh, off, max(size-off, 0)), fh}, size, nil
}

// renditionFiles keeps fetched renditions on disk, the newest up to a
// byte budget.
type renditionFiles struct {
	dir     string
	budget  int64
	flights singleflight.Group

	mu    sync.Mutex // guards files, order, used
	files map[string]renditionFile
	order []string // oldest first
	used  int64
}

type renditionFile struct {
	path string
	size int64
}

func newRenditionFiles(dir string) *renditionFiles {
	if dir == "" {
		dir = os.TempDir()
	}
	return &renditionFiles{dir: filepath.Join(dir, "invenio-renditions"), budget: 1 << 30, files: map[string]renditionFile{}}
}

// get is the file holding key's rendition, fetched by fill if not kept.
func (c *renditionFiles) get(ctx context.Context, key string, fill func(io.Writer) error) (string, int64, error) {
	c.mu.Lock()
	if f, ok := c.files[key]; ok {
		c.mu.Unlock()
		return f.path, f.size, nil
	}
	c.mu.Unlock()
	v, err, _ := c.flights.Do(key, func() (any, error) {
		if err := os.MkdirAll(c.dir, 0o700); err != nil {
			return nil, err
		}
		fh, err := os.CreateTemp(c.dir, "r-*")
		if err != nil {
			return nil, err
		}
		err = fill(fh)
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		st, serr := os.Stat(fh.Name())
		if err == nil {
			err = serr
		}
		if err != nil {
			os.Remove(fh.Name())
			return nil, err
		}
		f := renditionFile{path: fh.Name(), size: st.Size()}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.files[key] = f
		c.order = append(c.order, key)
		c.used += f.size
		for c.used > c.budget && len(c.order) > 1 {
			old := c.files[c.order[0]]
			os.Remove(old.path) // open readers keep reading it
			c.used -= old.size
			delete(c.files, c.order[0])
			c.order = c.order[1:]
		}
		return f, nil
	})
	if err != nil {
		return "", 0, err
	}
	f := v.(renditionFile)
	return f.path, f.size, nil
}

func (c *renditionFiles) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.files {
		os.Remove(f.path)
	}
	c.files, c.order, c.used = map[string]renditionFile{}, nil, 0
}
