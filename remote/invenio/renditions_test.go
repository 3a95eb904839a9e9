package invenio_test

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	dfs "github.com/dmsfs/dmsfs/fs"
	"github.com/dmsfs/dmsfs/fs/fstest"
	"github.com/dmsfs/dmsfs/remote/invenio"
	"github.com/dmsfs/dmsfs/remote/invenio/inveniotest"
)

func testImage(w, h int) []byte {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetGray(x, y, color.Gray{Y: uint8((x + y) % 256)})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// TestIIIFRenditions: a record's image file has a JPEG and a PNG
// rendition made by the server's IIIF Image API; other files have none;
// a second read asks the server nothing; a save of the image makes them
// anew; they cannot be written.
func TestIIIFRenditions(t *testing.T) {
	r, srv := connect(t, inveniotest.Options{}, invenio.Config{})
	e := fstest.Mount(t, r, dfs.Options{})
	require.NoError(t, os.Mkdir(e.Path("Photos"), 0o755))
	orig := testImage(64, 48)
	require.NoError(t, os.WriteFile(e.Path("Photos/scan.png"), orig, 0o644))
	require.NoError(t, os.WriteFile(e.Path("Photos/notes.txt"), []byte("not an image\n"), 0o644))
	e.Settle()

	require.Equal(t, []string{"scan.png"}, e.Names("Photos/.renditions"), "only the image")
	require.Equal(t, []string{"scan.jpg", "scan.png"}, e.Names("Photos/.renditions/scan.png"))
	jpg, err := os.ReadFile(e.Path("Photos/.renditions/scan.png/scan.jpg"))
	require.NoError(t, err)
	img, err := jpeg.Decode(bytes.NewReader(jpg))
	require.NoError(t, err)
	require.Equal(t, image.Rect(0, 0, 64, 48), img.Bounds())
	pngR, err := os.ReadFile(e.Path("Photos/.renditions/scan.png/scan.png"))
	require.NoError(t, err)
	want, _ := png.Decode(bytes.NewReader(orig))
	got, err := png.Decode(bytes.NewReader(pngR))
	require.NoError(t, err)
	require.Equal(t, want.Bounds(), got.Bounds())
	r0, g0, b0, _ := want.At(10, 20).RGBA()
	r1, g1, b1, _ := got.At(10, 20).RGBA()
	require.Equal(t, []uint32{r0, g0, b0}, []uint32{r1, g1, b1}, "the PNG holds the pixels")

	asked := srv.Requests("GET /api/iiif/")
	require.Equal(t, 2, asked)
	again, err := os.ReadFile(e.Path("Photos/.renditions/scan.png/scan.jpg"))
	require.NoError(t, err)
	require.Equal(t, jpg, again)
	require.Equal(t, asked, srv.Requests("GET /api/iiif/"), "read again from the cache")

	require.NoError(t, os.WriteFile(e.Path("Photos/scan.png"), testImage(32, 32), 0o644))
	e.Settle()
	jpg, err = os.ReadFile(e.Path("Photos/.renditions/scan.png/scan.jpg"))
	require.NoError(t, err)
	img, err = jpeg.Decode(bytes.NewReader(jpg))
	require.NoError(t, err)
	require.Equal(t, image.Rect(0, 0, 32, 32), img.Bounds(), "made anew after the save")

	require.ErrorIs(t, os.WriteFile(e.Path("Photos/.renditions/scan.png/scan.jpg"), []byte("x"), 0o644), syscall.EROFS)
	require.NotContains(t, e.Names("Photos"), ".renditions")
}
