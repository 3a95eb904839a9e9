package axelor

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// A page read into rows holds what the same page read into maps does.
func TestRowsReadAsMapsRead(t *testing.T) {
	page := `{"status":0,"total":4,"data":[
		{"id":5,"version":0,"fileName":"a.txt","isDirectory":false,"relatedModel":null,"relatedId":null,
		 "createdOn":"2026-11-30T10:00:00.123Z","updatedOn":null,"parent.id":42,
		 "metaFile.id":77,"metaFile.version":3,"metaFile.fileSize":12345,"metaFile.createdOn":"2026-11-30T10:00:00Z",
		 "metaFile.updatedOn":"2026-11-30T11:00Z","metaFile.description":"kept mtime"},
		{"id":6,"version":2,"fileName":"Folder","isDirectory":true,"parent.id":null},
		{"id":7,"version":1,"fileName":"scan.pdf","relatedModel":"com.axelor.apps.base.db.Partner","relatedId":9,
		 "metaFile.id":"78","metaFile.fileSize":"12","extra":{"nested":[1,2]}},
		{"id":8,"fileName":"no version, no meta"}]}`
	var typed struct {
		Data []row `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(page), &typed))
	maps, total, err := parseRows(http.MethodPost, "/search", []byte(page))
	require.NoError(t, err)
	require.Equal(t, 4, total)
	require.Len(t, typed.Data, len(maps))
	for i, m := range maps {
		require.Equal(t, rowOf(m), typed.Data[i], "row %d", i)
	}
}

// An answer of unexpected types is read through maps: the same nodes
// as before, or the same error.
func TestSearchReadsOddTypesThroughMaps(t *testing.T) {
	var typed struct {
		Data []row `json:"data"`
	}
	odd := `{"status":0,"data":[{"id":"5","version":1,"fileName":7,"metaFile.id":"x"}]}`
	require.Error(t, json.Unmarshal([]byte(odd), &typed), "the typed reading gives up")
	maps, _, err := parseRows(http.MethodPost, "/search", []byte(odd))
	require.NoError(t, err)
	r := rowOf(maps[0])
	require.Equal(t, "7", r.FileName)
	require.EqualValues(t, 5, num(r.ID))
	require.Zero(t, num(r.MetaID))
}
