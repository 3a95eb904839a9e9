package enaio_test

import (
	"bytes"
	"image"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/image/tiff"

	dfs "github.com/dmsfs/dmsfs/fs"
	"github.com/dmsfs/dmsfs/fs/fstest"
	"github.com/dmsfs/dmsfs/remote/enaio"
	"github.com/dmsfs/dmsfs/remote/enaio/enaiotest"
)

// TestRenditions: dir/.renditions/<doc>/ of the two-page sample scan
// holds a PDF pdfinfo reads, a TIFF with a directory per page, and each
// page with its annotation burned in, which differs from the page
// exactly inside the annotation; a text document offers only the PDF;
// sizes are 0 until fetched, then right; a second read asks the server
// nothing; a save of the document fetches them anew; a page the server
// cannot convert is ENOTSUP with its reason logged; nothing can be
// written there; rsync, cp -r and find of the folder never walk into
// them.
func TestRenditions(t *testing.T) {
	fstest.RequireTools(t, "pdfinfo", "tiffinfo", "rsync", "find")
	srv := enaiotest.Start(t, enaiotest.Options{})
	e := fstest.Mount(t, connect(t, srv, enaio.Config{}), dfs.Options{})
	const akte = "Akten/Beispielakte"
	scan := akte + "/.renditions/Lieferschein"
	e.Names(akte)
	asked := srv.Jobs("std.StoreInCacheByID") + srv.Jobs("dms.GetObjectTypeByID")
	require.Equal(t, []string{"Lieferschein"}, e.Names(akte+"/.renditions"), "the scan; the register is no document")
	require.Equal(t, []string{"Lieferschein (1) (annotated).tif", "Lieferschein (2) (annotated).tif", "Lieferschein.pdf", "Lieferschein.tif"}, e.Names(scan))
	require.Equal(t, asked, srv.Jobs("std.StoreInCacheByID")+srv.Jobs("dms.GetObjectTypeByID"), "the main type says what a document offers: listing asks nothing")
	require.Equal(t, []string{"Vertrag.pdf"}, e.Names("Personal/Muster, Max/.renditions/Vertrag.txt"), "a text document converts to PDF only")
	require.Equal(t, []string{"Rechnung 2024-001.pdf"}, e.Names(akte+"/Rechnungen/.renditions/Rechnung 2024-001.pdf"))

	st, err := os.Stat(e.Path(scan + "/Lieferschein.pdf"))
	require.NoError(t, err)
	require.Zero(t, st.Size(), "not fetched yet")
	jobs := srv.Jobs("std.StoreInCacheByID")
	info := e.Run("pdfinfo", e.Path(scan+"/Lieferschein.pdf"))
	require.Regexp(t, `(?m)^Title:\s+Lieferschein$`, info)
	require.Regexp(t, `(?m)^Pages:\s+2$`, info)
	pdf, err := os.ReadFile(e.Path(scan + "/Lieferschein.pdf"))
	require.NoError(t, err)
	require.Contains(t, string(pdf), "(Lieferschein [", "the pages name the document")
	st, err = os.Stat(e.Path(scan + "/Lieferschein.pdf"))
	require.NoError(t, err)
	require.Equal(t, int64(len(pdf)), st.Size(), "the size once fetched")
	require.Equal(t, jobs+1, srv.Jobs("std.StoreInCacheByID"), "pdfinfo and the read after it: one conversion")

	dirs := regexp.MustCompile(`(?m)^TIFF Directory at offset`).FindAllString(e.Run("tiffinfo", e.Path(scan+"/Lieferschein.tif")), -1)
	require.Len(t, dirs, 2, "one directory per page")

	page := func(p string) *image.Gray {
		b, err := os.ReadFile(e.Path(p))
		require.NoError(t, err, p)
		img, err := tiff.Decode(bytes.NewReader(b))
		require.NoError(t, err, p)
		g, ok := img.(*image.Gray)
		require.True(t, ok, "%s: %T", p, img)
		return g
	}
	a := enaiotest.SampleAnnotation
	orig, ann := page(akte+"/Lieferschein/Lieferschein (1).tif"), page(scan+"/Lieferschein (1) (annotated).tif")
	require.Equal(t, orig.Bounds(), ann.Bounds())
	inside := image.Rect(a.X, a.Y, a.X+a.W, a.Y+a.H)
	differ := 0
	for y := orig.Rect.Min.Y; y < orig.Rect.Max.Y; y++ {
		for x := orig.Rect.Min.X; x < orig.Rect.Max.X; x++ {
			same := orig.GrayAt(x, y) == ann.GrayAt(x, y)
			if image.Pt(x, y).In(inside) {
				require.False(t, same, "(%d,%d) is under the annotation", x, y)
				differ++
			} else {
				require.True(t, same, "(%d,%d) is not under the annotation", x, y)
			}
		}
	}
	require.Equal(t, a.W*a.H, differ)
	require.Equal(t, page(akte+"/Lieferschein/Lieferschein (2).tif").Pix, page(scan+"/Lieferschein (2) (annotated).tif").Pix, "page 2 has no annotation")

	jobs = srv.Jobs("std.StoreInCacheByID")
	again, err := os.ReadFile(e.Path(scan + "/Lieferschein.pdf"))
	require.NoError(t, err)
	require.Equal(t, pdf, again)
	require.Equal(t, string(pdf), e.Run("cat", e.Path(scan+"/Lieferschein.pdf")))
	copied := t.TempDir() + "/copy.tif"
	e.Run("cp", e.Path(scan+"/Lieferschein.tif"), copied)
	require.Len(t, regexp.MustCompile(`(?m)^TIFF Directory at offset`).FindAllString(e.Run("tiffinfo", copied), -1), 2, "cp copies it whole")
	require.Equal(t, jobs, srv.Jobs("std.StoreInCacheByID"), "read again from the cache")

	// A save of page 2 (a new scan of it, with three bars) is a new
	// version: the renditions are made again and show it.
	require.NoError(t, os.WriteFile(e.Path(akte+"/Lieferschein/Lieferschein (2).tif"), enaiotest.SamplePage(3), 0o644))
	e.Settle()
	require.Equal(t, enaiotest.SamplePage(3), e.Content(e.MustNode(akte+"/Lieferschein"), "Lieferschein (2).tif"))
	require.Equal(t, page(akte+"/Lieferschein/Lieferschein (2).tif").Pix, page(scan+"/Lieferschein (2) (annotated).tif").Pix, "the new page 2")
	require.Greater(t, srv.Jobs("std.StoreInCacheByID"), jobs, "fetched anew")
	pdf2, err := os.ReadFile(e.Path(scan + "/Lieferschein.pdf"))
	require.NoError(t, err)
	require.NotEqual(t, pdf, pdf2, "the PDF shows the new page")

	// A page the server cannot convert: ENOTSUP, with its reason logged.
	require.NoError(t, os.WriteFile(e.Path(akte+"/Lieferschein/Lieferschein (2).tif"), []byte("no image"), 0o644))
	e.Settle()
	_, err = os.ReadFile(e.Path(scan + "/Lieferschein.tif"))
	require.ErrorIs(t, err, syscall.ENOTSUP)
	require.Contains(t, e.LogText(), "kein lesbares Bild")

	// Read-only.
	require.ErrorIs(t, os.WriteFile(e.Path(scan+"/Lieferschein.pdf"), []byte("x"), 0o644), syscall.EROFS)
	require.ErrorIs(t, os.WriteFile(e.Path(scan+"/new.txt"), []byte("x"), 0o644), syscall.EROFS)
	require.ErrorIs(t, os.Remove(e.Path(scan+"/Lieferschein.pdf")), syscall.EROFS)
	require.ErrorIs(t, os.Mkdir(e.Path(akte+"/.renditions"), 0o755), syscall.EEXIST)
	_, err = os.Stat(e.Path(akte + "/.renditions/Rechnungen"))
	require.ErrorIs(t, err, os.ErrNotExist, "a register converts to nothing")

	// Hidden from listings, so walks leave it alone.
	require.NotContains(t, e.Names(akte), ".renditions")
	require.NotContains(t, e.Run("find", e.Path("Akten")), ".renditions")
	dst := t.TempDir()
	e.Run("rsync", "-a", e.Path(akte)+"/", dst+"/")
	out, err := os.ReadDir(dst)
	require.NoError(t, err)
	for _, d := range out {
		require.False(t, strings.HasPrefix(d.Name(), ".renditions"), d.Name())
	}
	cp := t.TempDir() + "/copy"
	e.Run("cp", "-r", e.Path(akte), cp)
	require.NotContains(t, e.Run("find", cp), ".renditions", "cp -r")
}
