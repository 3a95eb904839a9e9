package dmsxml

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestUTF16RoundTrip(t *testing.T) {
	b, err := Marshal(History{Modifications: []Modification{{GUID: "AB", Time: "01.02.2026 10:11:12", Description: "Grüße – 日本語"}}})
	require.NoError(t, err)
	for _, in := range [][]byte{b, UTF16(string(b)), append([]byte{0xEF, 0xBB, 0xBF}, b...)} {
		var h History
		require.NoError(t, Unmarshal(in, &h))
		require.Equal(t, "Grüße – 日本語", h.Modifications[0].Description)
	}
	var h History
	require.Error(t, Unmarshal([]byte{0xFF, 0xFE, 0x41}, &h), "odd UTF-16")
	require.Error(t, Unmarshal([]byte{0xC3, 0x28}, &h), "neither UTF-8 nor UTF-16")
}

// FuzzUnmarshal: answers from the server are untrusted; whatever comes,
// decoding returns an error or a value, never panics.
func FuzzUnmarshal(f *testing.F) {
	for _, v := range []any{Content{Format: "HOL"}, ObjDef{}, History{}, Data{}} {
		b, _ := Marshal(v)
		f.Add(b)
	}
	f.Add([]byte(`<DMSContent format="HOL"><Archive><ObjectType id="1"><ObjectList><Object id="5"><Fields><Field internal_name="OBJECT_TIME" system="1" value="9">9</Field></Fields><TableFields><TableField internal_name="Files"><Row><Field internal_name="FileName">a</Field></Row></TableField></TableFields></Object></ObjectList></ObjectType></Archive></DMSContent>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Content
		Unmarshal(b, &c)
		var d ObjDef
		Unmarshal(b, &d)
		var h History
		Unmarshal(b, &h)
		var q Query
		Unmarshal(b, &q)
		var x Data
		if Unmarshal(b, &x) == nil {
			x.One()
		}
		// An error file's text: bounded, valid UTF-8, whatever came.
		if s := Text(b); len(s) > 503 || !utf8.ValidString(s) {
			t.Fatalf("Text gave %d bytes (valid UTF-8: %v)", len(s), utf8.ValidString(s))
		}
	})
}

func TestText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`<?xml version="1.0" encoding="UTF-8"?><DMSData><Errors><Error number="-5">Feld 'X' fehlt.</Error></Errors></DMSData>`, "-5 Feld 'X' fehlt."},
		{"not xml at all", "not xml at all"},
		{"  ", ""},
		{`<a><b>one</b> <b>two</b></a>`, "one two"},
	} {
		require.Equal(t, c.want, Text([]byte(c.in)), c.in)
	}
	require.Equal(t, "Grüße", Text(UTF16(`<?xml version="1.0" encoding="UTF-8"?><E>Grüße</E>`)), "UTF-16 with a BOM")
	require.Len(t, []rune(Text([]byte("<a>"+strings.Repeat("x", 2000)+"</a>"))), 501, "500 bytes and an ellipsis")
}
