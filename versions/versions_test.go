package versions

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dmsfs/dmsfs/remote"
)

func TestNameSortsAndParses(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.FixedZone("CET", 3600))
	require.Equal(t, "2026-03-04T04-06-07Z_v3.odt", Name(t0, 3, "letter.odt"))
	require.Equal(t, "2026-03-04T04-06-07Z_v12", Name(t0, 12, "Makefile"))
	n, ok := Parse("2026-03-04T04-06-07Z_v12.tar.gz")
	require.True(t, ok)
	require.Equal(t, 12, n)
	_, ok = Parse("letter.odt")
	require.False(t, ok)
	require.Less(t, Name(t0, 9, "a"), Name(t0.Add(time.Second), 10, "a"))
}

func TestEarlier(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := func(name, id string) remote.File { return remote.File{Name: name, ContentID: id} }
	single := []remote.Version{
		{N: 1, Time: t0, Files: []remote.File{f("a.txt", "x")}},
		{N: 2, Time: t0.Add(time.Minute), Files: []remote.File{f("a.txt", "y")}},
		{N: 3, Time: t0.Add(2 * time.Minute), Files: []remote.File{f("b.txt", "z")}},
	}
	got := Earlier(single, "")
	require.Len(t, got, 2)
	require.Equal(t, "2026-01-01T00-00-00Z_v1.txt", got[0].Name)
	require.Equal(t, 2, got[1].Version)
	require.Nil(t, Earlier(single[:1], ""), "the current version is not an earlier one")

	multi := []remote.Version{
		{N: 1, Time: t0, Files: []remote.File{f("a", "1")}},
		{N: 2, Time: t0.Add(time.Minute), Files: []remote.File{f("a", "1"), f("b", "2")}},
		{N: 3, Time: t0.Add(2 * time.Minute), Files: []remote.File{f("a", "3"), f("b", "2")}},
	}
	require.Len(t, Earlier(multi, "a"), 1, "a changed once")
	require.Empty(t, Earlier(multi, "b"), "b never changed")
}
