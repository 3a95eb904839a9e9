package enaiotest

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"
	"strings"
	"unicode/utf8"

	"golang.org/x/image/tiff"

	"github.com/dmsfs/dmsfs/remote/enaio/rpc"
)

// What this server makes of documents when asked to convert them
// (std.StoreInCacheByID with Convert, and AddAnnotations; spec §3.4): a
// real server renders with its own converters, this one writes the
// simplest files that real readers accept — PDFs pdfinfo reads, baseline
// TIFFs with one directory per page that tiffinfo lists — so that what
// the client shows can be checked with the programs users have.

// conversion is a std.StoreInCacheByID that converts (Convert 1: one
// PDF, main types 1–4; 8: one multi-page TIFF, main types 2–3; spec
// §3.4) or burns the annotations into the pages (AddAnnotations=1; with
// Convert 0 each page stays in its format).
type conversion struct {
	id          int
	title       string
	mainType    int
	to          string
	annotations []Annotation // nil unless asked for
}

func (c conversion) run(blobs []Blob, datas [][]byte) ([]rpc.File, *jobError) {
	one := func(ext string, b []byte) []rpc.File {
		return []rpc.File{{Ext: ext, Size: int64(len(b)), R: bytes.NewReader(b)}}
	}
	isImage := c.mainType >= 1 && c.mainType <= 3
	pages := func() ([]*image.Gray, *jobError) {
		var out []*image.Gray
		for i, d := range datas {
			page, _, err := decodePage(d)
			if err != nil {
				return nil, fail(errInvalid, "Seite %d von Objekt %d ist kein lesbares Bild: %v", i+1, c.id, err)
			}
			out = append(out, burn(page, i+1, c.annotations))
		}
		return out, nil
	}
	switch c.to {
	case "0":
		if !isImage {
			return nil, fail(errInvalid, "Anmerkungen gibt es nur bei Bilddokumenten (Haupttyp 1-3); Objekt %d hat Haupttyp %d.", c.id, c.mainType)
		}
		var files []rpc.File
		for i, d := range datas {
			if page, format, err := decodePage(d); err == nil {
				d = encodeAs(burn(page, i+1, c.annotations), format)
			}
			files = append(files, one(blobs[i].Ext, d)...)
		}
		return files, nil
	case "1":
		if c.mainType < 1 || c.mainType > 4 {
			return nil, fail(errInvalid, "Konvertierung nach PDF ist für Haupttyp %d nicht möglich.", c.mainType)
		}
		heading := fmt.Sprintf("%s [%d]", c.title, c.id)
		var pp []pdfPage
		if isImage {
			imgs, jerr := pages()
			if jerr != nil {
				return nil, jerr
			}
			for i, img := range imgs {
				pp = append(pp, pdfPage{heading: fmt.Sprintf("%s, Seite %d", heading, i+1), image: img})
			}
		} else {
			if len(datas) == 1 && bytes.HasPrefix(datas[0], []byte("%PDF-")) {
				return one("pdf", datas[0]), nil // a PDF is its own rendition
			}
			for i, d := range datas {
				lines := textLines(d, 50)
				if lines == nil {
					lines = []string{fmt.Sprintf("Datei %d: %s, %d Bytes", i+1, blobs[i].Ext, len(d))}
				}
				pp = append(pp, pdfPage{heading: heading, lines: lines})
			}
		}
		if len(pp) == 0 {
			pp = []pdfPage{{heading: heading}}
		}
		return one("pdf", renderPDF(c.title, pp)), nil
	case "8":
		if c.mainType != 2 && c.mainType != 3 {
			return nil, fail(errInvalid, "Konvertierung nach Multipage-TIFF ist für Haupttyp %d nicht möglich.", c.mainType)
		}
		imgs, jerr := pages()
		if jerr != nil {
			return nil, jerr
		}
		return one("tif", multiPageTIFF(imgs)), nil
	}
	return nil, fail(errInvalid, "Konvertierung %s wird von diesem Server nicht unterstützt.", c.to)
}

// Annotation is a rectangle a user drew on a page of an image document
// (enaio keeps annotations beside the pages, not in them). Pages count
// from 1; the rectangle is in pixels of the page.
type Annotation struct {
	Page       int `json:"page"`
	X, Y, W, H int
}

// annotationShade is the grey an annotation is burned in with: the
// sample pages are black and white only, so every pixel it covers
// changes.
const annotationShade = 0x80

// SamplePage is page n of the sample scan: a white sheet with n wide
// black bars and a line of thin ones, as an uncompressed grey TIFF.
func SamplePage(n int) []byte {
	img := image.NewGray(image.Rect(0, 0, 320, 200))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	for i := range n {
		draw.Draw(img, image.Rect(20+i*40, 20, 50+i*40, 120), image.Black, image.Point{}, draw.Src)
	}
	for x := 20; x < 300; x += 6 {
		draw.Draw(img, image.Rect(x, 150, x+3, 160), image.Black, image.Point{}, draw.Src)
	}
	return encodeTIFF(img)
}

// SampleAnnotation is the annotation the sample scan has on its first
// page.
var SampleAnnotation = Annotation{Page: 1, X: 10, Y: 10, W: 60, H: 40}

func encodeTIFF(img image.Image) []byte {
	var b bytes.Buffer
	if err := tiff.Encode(&b, img, &tiff.Options{Compression: tiff.Uncompressed}); err != nil {
		panic(err) // encoding into memory does not fail
	}
	return b.Bytes()
}

// decodePage reads a page image (TIFF, PNG, JPEG) as grey pixels.
func decodePage(b []byte) (*image.Gray, string, error) {
	img, format, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, "", err
	}
	g := image.NewGray(image.Rect(0, 0, img.Bounds().Dx(), img.Bounds().Dy()))
	draw.Draw(g, g.Bounds(), img, img.Bounds().Min, draw.Src)
	return g, format, nil
}

// burn draws a page's annotations into a copy of it.
func burn(page *image.Gray, n int, anns []Annotation) *image.Gray {
	out := image.NewGray(page.Bounds())
	copy(out.Pix, page.Pix)
	for _, a := range anns {
		if a.Page == n {
			r := image.Rect(a.X, a.Y, a.X+a.W, a.Y+a.H).Intersect(out.Bounds())
			draw.Draw(out, r, &image.Uniform{C: color.Gray{Y: annotationShade}}, image.Point{}, draw.Src)
		}
	}
	return out
}

// encodeAs writes a page back in the format it came in.
func encodeAs(img *image.Gray, format string) []byte {
	var b bytes.Buffer
	switch format {
	case "png":
		_ = png.Encode(&b, img)
	case "jpeg":
		_ = jpeg.Encode(&b, img, nil)
	default:
		return encodeTIFF(img)
	}
	return b.Bytes()
}

// multiPageTIFF writes grey pages as one baseline TIFF, one image file
// directory per page (little-endian, uncompressed, 8 bits per pixel).
func multiPageTIFF(pages []*image.Gray) []byte {
	const (
		tShort    = 3
		tLong     = 4
		tRational = 5
	)
	type entry struct {
		tag, typ uint16
		count    uint32
		value    uint32
	}
	le := binary.LittleEndian
	out := []byte{'I', 'I', 42, 0, 0, 0, 0, 0}
	next := 4 // where the offset of the next directory goes
	for i, p := range pages {
		w, h := p.Bounds().Dx(), p.Bounds().Dy()
		strip := len(out)
		for y := range h {
			out = append(out, p.Pix[y*p.Stride:y*p.Stride+w]...)
		}
		res := len(out) // 72/1 dpi, one rational for both axes
		out = le.AppendUint32(out, 72)
		out = le.AppendUint32(out, 1)
		if len(out)%2 == 1 {
			out = append(out, 0) // directories start on a word boundary
		}
		entries := []entry{
			{254, tLong, 1, 2}, // NewSubfileType: a page of a multi-page file
			{256, tLong, 1, uint32(w)},
			{257, tLong, 1, uint32(h)},
			{258, tShort, 1, 8},
			{259, tShort, 1, 1}, // no compression
			{262, tShort, 1, 1}, // black is zero
			{273, tLong, 1, uint32(strip)},
			{277, tShort, 1, 1},
			{278, tLong, 1, uint32(h)},
			{279, tLong, 1, uint32(w * h)},
			{282, tRational, 1, uint32(res)},
			{283, tRational, 1, uint32(res)},
			{296, tShort, 1, 2},                                  // inches
			{297, tShort, 2, uint32(i) | uint32(len(pages))<<16}, // page i of n
		}
		le.PutUint32(out[next:], uint32(len(out)))
		out = le.AppendUint16(out, uint16(len(entries)))
		for _, e := range entries {
			out = le.AppendUint16(out, e.tag)
			out = le.AppendUint16(out, e.typ)
			out = le.AppendUint32(out, e.count)
			out = le.AppendUint32(out, e.value) // SHORTs sit in the low bytes: little-endian
		}
		next = len(out)
		out = le.AppendUint32(out, 0)
	}
	return out
}

// pdfPage is one page of a PDF rendition: a heading, an image or lines
// of text.
type pdfPage struct {
	heading string
	image   *image.Gray
	lines   []string
}

// renderPDF writes a PDF 1.4 file with a Helvetica heading on each page,
// the page's image scaled to the width of an A4 sheet, or its lines.
func renderPDF(title string, pages []pdfPage) []byte {
	var b bytes.Buffer
	var offsets []int
	obj := func(body string, stream []byte) int {
		offsets = append(offsets, b.Len())
		n := len(offsets)
		fmt.Fprintf(&b, "%d 0 obj\n%s", n, body)
		if stream != nil {
			b.WriteString("\nstream\n")
			b.Write(stream)
			b.WriteString("\nendstream")
		}
		b.WriteString("\nendobj\n")
		return n
	}
	b.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	// Objects 1–4 are fixed; pages follow. The catalog and page tree
	// name the pages, so they are written with numbers worked out first.
	first := 5
	var kids []string
	for i := range pages {
		n := first + 3*i // page, contents, image
		kids = append(kids, fmt.Sprintf("%d 0 R", n))
	}
	obj("<< /Type /Catalog /Pages 2 0 R >>", nil)
	obj(fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), len(pages)), nil)
	obj("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>", nil)
	obj(fmt.Sprintf("<< /Title %s /Producer (enaiotest) >>", pdfString(title)), nil)
	for i, p := range pages {
		n := first + 3*i
		var content bytes.Buffer
		fmt.Fprintf(&content, "BT /F1 14 Tf 50 800 Td %s Tj ET\n", pdfString(p.heading))
		for j, l := range p.lines {
			fmt.Fprintf(&content, "BT /F1 10 Tf 50 %d Td %s Tj ET\n", 770-14*j, pdfString(l))
		}
		xobj := ""
		if p.image != nil {
			w, h := p.image.Bounds().Dx(), p.image.Bounds().Dy()
			sh := 495 * h / max(w, 1)
			fmt.Fprintf(&content, "q 495 0 0 %d 50 %d cm /Im1 Do Q\n", sh, 780-sh)
			xobj = fmt.Sprintf(" /XObject << /Im1 %d 0 R >>", n+2)
		}
		obj(fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >>%s >> /Contents %d 0 R >>", xobj, n+1), nil)
		obj(fmt.Sprintf("<< /Length %d >>", content.Len()), content.Bytes())
		if p.image != nil {
			w, h := p.image.Bounds().Dx(), p.image.Bounds().Dy()
			var z bytes.Buffer
			zw := zlib.NewWriter(&z)
			for y := range h {
				_, _ = zw.Write(p.image.Pix[y*p.image.Stride : y*p.image.Stride+w])
			}
			_ = zw.Close()
			obj(fmt.Sprintf("<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode /Length %d >>", w, h, z.Len()), z.Bytes())
		} else {
			obj("null", nil) // keeps the numbering of three objects per page
		}
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(offsets)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R /Info 4 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(offsets)+1, xref)
	return b.Bytes()
}

// pdfString is a PDF literal string in WinAnsi (Latin-1 where it
// matters); other characters become "?".
func pdfString(s string) string {
	var b strings.Builder
	b.WriteByte('(')
	for _, r := range s {
		switch {
		case r == '(' || r == ')' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\t':
			b.WriteByte(' ')
		case r >= 0x20 && r < 0x7f:
			b.WriteRune(r)
		case r >= 0xa0 && r <= 0xff:
			b.WriteByte(byte(r))
		default:
			b.WriteByte('?')
		}
	}
	b.WriteByte(')')
	return b.String()
}

// textLines are the first lines of a text file, nil if it is not text.
func textLines(b []byte, n int) []string {
	if !utf8.Valid(b) || bytes.IndexByte(b, 0) >= 0 {
		return nil
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = append(lines[:n], "...")
	}
	return lines
}
