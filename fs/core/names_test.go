package core

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dmsfs/dmsfs/remote"
)

func TestEscapeRoundTrip(t *testing.T) {
	cases := map[string]string{
		"plain.txt":     "plain.txt",
		"a/b":           "a%2Fb",
		"nul\x00byte":   "nul%00byte",
		".":             "%2E",
		"..":            "%2E%2E",
		"50% off.pdf":   "50% off.pdf",
		"%41.txt":       "%41.txt",
		"a%2Fb":         "a%252Fb",
		"%2E":           "%252E",
		"%25":           "%2525",
		"x%":            "x%",
		"Ünïcödé ß.odt": "Ünïcödé ß.odt",
		"...":           "...",
		"a%2fb":         "a%2fb",
	}
	for in, want := range cases {
		require.Equal(t, want, Escape(in), "escape %q", in)
		require.Equal(t, in, Unescape(Escape(in)), "round trip %q", in)
		require.NotContains(t, Escape(in), "/")
		require.NotContains(t, Escape(in), "\x00")
	}
	// Names typed in the mount that are no escapes reach the server as typed
	// and come back the same.
	for _, typed := range []string{"%41.txt", "100%", "%zz", "a%2fb"} {
		require.Equal(t, typed, Escape(Unescape(typed)))
	}
}

func FuzzEscape(f *testing.F) {
	for _, s := range []string{"a/b", "%2F", ".", "..", "%", "%%25", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := Escape(s)
		if Unescape(e) != s {
			t.Fatalf("Unescape(Escape(%q)) = %q", s, Unescape(e))
		}
		if e == "." || e == ".." || len(e) == 0 && len(s) != 0 {
			t.Fatalf("Escape(%q) = %q", s, e)
		}
		for i := 0; i < len(e); i++ {
			if e[i] == '/' || e[i] == 0 {
				t.Fatalf("Escape(%q) = %q holds / or NUL", s, e)
			}
		}
	})
}

func TestMountNamesDuplicates(t *testing.T) {
	nodes := []remote.Node{
		{ID: "7", Name: "report.pdf"},
		{ID: "3", Name: "report.pdf"},
		{ID: "4", Name: "a/b"},
		{ID: "5", Name: ".bashrc"},
		{ID: "6", Name: ".bashrc"},
	}
	got := MountNames(nodes)
	require.Len(t, got, 5)
	require.Equal(t, remote.ID("3"), got["report (3).pdf"].ID)
	require.Equal(t, remote.ID("7"), got["report (7).pdf"].ID)
	require.Equal(t, remote.ID("4"), got["a%2Fb"].ID)
	require.Equal(t, remote.ID("5"), got[".bashrc (5)"].ID)
}

func TestTempMatcher(t *testing.T) {
	m, err := NewTempMatcher(DefaultTempPatterns, true)
	require.NoError(t, err)
	for _, name := range []string{".~lock.letter.odt#", "~$report.docx", "~WRL0001.tmp", "lu12345abc.tmp",
		".x.swp", "4913", "x~", ".goutputstream-ABC123", ".notes.txt.a1B2c3", ".x.Q9zzzz", "sedX1b2cD", "sed0abcde"} {
		require.True(t, m.IsTemp(name), name)
	}
	for _, name := range []string{"letter.odt", "x", ".profile.backup", ".bashrc", "lu.txt", "report.tmp.pdf", "4914", "sedation", "sedentary", "sed12345"} {
		require.False(t, m.IsTemp(name), name)
	}
	// All small letters: a temporary only beside the file rsync updates.
	beside := func(n string) bool { return n == "f03.bin" }
	require.True(t, m.IsTempBeside(".f03.bin.pkklnx", beside))
	require.False(t, m.IsTempBeside(".profile.backup", beside))
	require.False(t, m.IsTempBeside(".f04.bin.pkklnx", beside))
	require.True(t, m.IsTempBeside(".x.swp", beside))
	_, err = NewTempMatcher([]string{"[bad"}, false)
	require.Error(t, err)
}
