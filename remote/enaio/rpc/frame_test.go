package rpc

import (
	"bytes"
	"encoding/hex"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The byte vectors of specs/enaio.md §2.1.10 (the first also equals
// ECMind's unit-test constant), checked in both directions.

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	require.NoError(t, err)
	return b
}

func TestHeaderVector(t *testing.T) {
	require.Equal(t, "L:BIN-0000000100v50N", string(header(80)))
	n, err := parseHeader([]byte("L:BIN-0000000100v50N"))
	require.NoError(t, err)
	require.Equal(t, 80, n)
	for _, bad := range []string{"L:XML-0000000100v50N", "L:BIN-00000001x0v50N", "L:BIN-0000000010v50N", "L:BIN-0000000100v50"} {
		_, err := parseHeader([]byte(bad))
		require.ErrorIs(t, err, ErrMalformed, bad)
	}
}

func TestFileHeaderVector(t *testing.T) {
	want := append([]byte("@ASSTREAM@0000001024@docx"), 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, '@')
	require.Equal(t, want, FileHeader(1024, "docx"))
	size, ext, err := parseFileHeader(want)
	require.NoError(t, err)
	require.Equal(t, int64(1024), size)
	require.Equal(t, "docx", ext)
	// 0.x padded with NUL; both paddings are stripped.
	_, ext, err = parseFileHeader(append([]byte("@ASSTREAM@0000001024@docx"), 0, 0, 0, 0, 0, 0, '@'))
	require.NoError(t, err)
	require.Equal(t, "docx", ext)
}

func TestParamBlockVectors(t *testing.T) {
	cases := []struct {
		name   string
		params []Param
		hex    string
	}{
		{"empty", nil, "00000004 00000000"},
		{"four types", []Param{
			{"testparameter1", String, "value1"},
			{"testparameter2", Integer, "123"},
			{"testparameter3", DateTime, "1753394400000"},
			{"testparameter4", Boolean, "1"},
		}, "0000008b000000040000003400000001000000430000004a00000002000000590000005d000000050000006c0000007a000000030000008974657374706172616d65746572310076616c7565310074657374706172616d6574657232003132330074657374706172616d657465723300313735333339343430303030300074657374706172616d6574657234003100"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := unhex(t, c.hex)
			require.Equal(t, want, AppendParams(nil, c.params))
			got, rest, err := ParseParams(append(want, 0xAA))
			require.NoError(t, err)
			require.Equal(t, []byte{0xAA}, rest)
			require.Equal(t, len(c.params), len(got))
			for i := range got {
				require.Equal(t, c.params[i], got[i])
			}
		})
	}
	require.Len(t, unhex(t, cases[1].hex), 143)
}

func TestRequestBodyVector(t *testing.T) {
	want := append([]byte("Cstd.IndexDataChanged\x00"), unhex(t, "0000001a 00000001 00000010 00000002 00000018")...)
	want = append(want, "streams\x001\x00"...)
	want = append(want, unhex(t, "00000026 00000001 00000010 00000001 0000001f")...)
	want = append(want, "testparameter1\x00value1\x00"...)
	require.Equal(t, want, requestBody("std.IndexDataChanged", []Param{{"testparameter1", String, "value1"}}, 1))
}

func TestEmptyJobRequestVector(t *testing.T) {
	want := unhex(t, "4c3a42494e2d303030303030303039327635304e436b726e2e456d7074794a6f62000000001a0000000100000010000000020000001873747265616d730030000000001800000001000000100000000200000016466c61677300300067d6a91ca2cadcfd7055454f3f6b0a173ff318b6")
	require.Len(t, want, 112)
	var buf bytes.Buffer
	require.NoError(t, WriteRequest(&buf, Request{Job: "krn.EmptyJob", Params: []Param{{"Flags", Integer, "0"}}}))
	require.Equal(t, want, buf.Bytes())

	req, err := ReadRequest(bytes.NewReader(want), nil)
	require.NoError(t, err)
	require.Equal(t, "krn.EmptyJob", req.Job)
	require.Equal(t, []Param{{"Flags", Integer, "0"}}, req.Params)
}

const replyVector = "4c3a42494e2d303030303030303039327635304e520000002f000000020000001c000000020000002300000025000000020000002d72657475726e00300073747265616d73003100000000040000000000000008000000000000000040415353545245414d403030303030303030303540747874111111111111114068656c6c6f4030303030303030303030404d41455254535341d6b613f7c04a8791d07cb75558dc9563c736883a"

func TestReplyVector(t *testing.T) {
	want := unhex(t, replyVector)
	require.Len(t, want, 169)
	var buf bytes.Buffer
	require.NoError(t, WriteReply(&buf, Reply{}, []File{{Ext: "txt", Size: 5, R: strings.NewReader("hello")}}))
	require.Equal(t, want, buf.Bytes())

	var got bytes.Buffer
	var gotExt string
	rep, err := ReadReply(bytes.NewReader(want), func(i int, ext string, size int64) (io.Writer, error) {
		require.Equal(t, 0, i)
		require.Equal(t, int64(5), size)
		gotExt = ext
		return &got, nil
	})
	require.NoError(t, err)
	require.Equal(t, 0, rep.Return)
	require.Equal(t, 1, rep.Streams)
	require.Empty(t, rep.Params)
	require.Empty(t, rep.Errors)
	require.Equal(t, "hello", got.String())
	require.Equal(t, "txt", gotExt)
}

func TestWrongDigestIsRejected(t *testing.T) {
	b := unhex(t, replyVector)
	b[len(b)-1] ^= 1
	_, err := ReadReply(bytes.NewReader(b), nil)
	require.ErrorIs(t, err, ErrDigest)
	require.Contains(t, err.Error(), "corrupted")

	// A flipped byte in the stream is caught the same way.
	b = unhex(t, replyVector)
	b[bytes.Index(b, []byte("hello"))] = 'j'
	_, err = ReadReply(bytes.NewReader(b), nil)
	require.ErrorIs(t, err, ErrDigest)
}

func TestTruncatedFramesAreErrors(t *testing.T) {
	b := unhex(t, replyVector)
	for n := 1; n < len(b); n++ {
		_, err := ReadReply(bytes.NewReader(b[:n]), nil)
		require.Error(t, err, "cut at %d", n)
	}
}

func TestErrorBlockRoundTrip(t *testing.T) {
	errs := []JobError{
		{Code: -1043332470, Message: "Der Parameter 'ObjectID' fehlt.", Source: "dms.XMLUpdate", Line: 412, Infos: []string{"info one", "zwei"}},
		{Code: 7, Message: "second"},
	}
	var buf bytes.Buffer
	require.NoError(t, WriteReply(&buf, Reply{Return: -1, Errors: errs}, nil))
	rep, err := ReadReply(&buf, nil)
	require.NoError(t, err)
	require.Equal(t, -1, rep.Return)
	require.Equal(t, errs[0], rep.Errors[0])
	require.Equal(t, "second", rep.Errors[1].Message)
	require.Equal(t, "Der Parameter 'ObjectID' fehlt.; second", rep.Message())

	// An error block in another layout is salvaged as text, never fatal.
	odd := append([]byte{0, 0, 0, 9, 0, 0, 0, 0}, "Zugriff verweigert\x00dms.XMLDelete\x00"...)
	got := ParseErrors(odd)
	require.Equal(t, "Zugriff verweigert", got[0].Message)
	require.Empty(t, ParseErrors([]byte{0, 0, 0, 0, 0, 0, 0, 0}))
}

func TestUTF8ValuesRoundTrip(t *testing.T) {
	ps := []Param{{"Titel", String, "Grüße – 日本語"}, {"XML", Base64, "PGE+PC9hPg=="}, {"n", BigInt, "9007199254740993"}}
	got, _, err := ParseParams(AppendParams(nil, ps))
	require.NoError(t, err)
	require.Equal(t, ps, got)
}

func TestPassword(t *testing.T) {
	for _, pw := range []string{"a", "secret", "Pässwört", "a much longer password with spaces!", strings.Repeat("x", 62)} {
		for range 50 {
			o, err := ObfuscatePassword(pw)
			require.NoError(t, err)
			require.Len(t, o, 8*len([]rune(pw)))
			for _, r := range o {
				require.Less(t, r, rune(0x80), "ASCII only")
			}
			got, err := RevealPassword(o)
			require.NoError(t, err)
			require.Equal(t, pw, got)
		}
	}
	_, err := ObfuscatePassword("日本")
	require.Error(t, err)
	_, err = ObfuscatePassword("")
	require.Error(t, err)
}

// FuzzReadReply feeds arbitrary bytes to the reply decoder, and to the
// request decoder: errors are fine, panics and hangs are not, and whatever
// decodes encodes back to a frame that decodes to the same thing.
func FuzzReadReply(f *testing.F) {
	f.Add(unhex(f, replyVector))
	var buf bytes.Buffer
	WriteReply(&buf, Reply{Return: 3, Params: []Param{{"XML", Base64, "PGE+"}}, Errors: []JobError{{Code: 1, Message: "m", Infos: []string{"i"}}}}, nil)
	f.Add(buf.Bytes())
	buf.Reset()
	WriteRequest(&buf, Request{Job: "dms.XMLInsert", Params: []Param{{"Flags", Integer, "0"}}, Files: []File{{Ext: "pdf", Size: 3, R: strings.NewReader("abc")}}})
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := ReadReply(bytes.NewReader(b), func(int, string, int64) (io.Writer, error) { return io.Discard, nil })
		if err == nil {
			var out bytes.Buffer
			files := make([]File, rep.Streams)
			require.NoError(t, WriteReply(&out, Reply{Return: rep.Return, Params: rep.Params, Errors: rep.Errors}, files[:0]))
			again, err := ReadReply(&out, nil)
			require.NoError(t, err)
			require.Equal(t, rep.Return, again.Return)
			require.Equal(t, len(rep.Params), len(again.Params))
		}
		ReadRequest(bytes.NewReader(b), nil)
		ParseErrors(b)
	})
}
