package axelor_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/axelor"
	"github.com/dmsfs/dmsfs/remote/remotetest"
)

// FuzzAnswers: every answer the server gives is the fuzzer's bytes. The
// client returns errors for what it cannot understand and never panics.
func FuzzAnswers(f *testing.F) {
	f.Add([]byte(`{"status":0,"total":1,"data":[{"id":1,"version":0,"fileName":"a.txt","isDirectory":false,"metaFile":{"id":2,"fileSize":3}}]}`))
	f.Add([]byte(`{"status":-1,"data":{"message":"Das Dokument ist gesperrt"}}`))
	f.Add([]byte(`{"status":0,"data":[{"id":"x","parent":{"id":null},"metaFile":7}]}`))
	var answer atomic.Pointer[[]byte]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(*answer.Load())
	}))
	defer srv.Close()
	f.Fuzz(func(t *testing.T, b []byte) {
		answer.Store(&b)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := axelor.New(ctx, axelor.Config{BaseURL: srv.URL, APIKey: "fuzz-key"})
		if err != nil {
			return
		}
		kids, _ := c.List(ctx, axelor.RootID)
		for _, id := range append([]remote.ID{"1"}, ids(kids)...) {
			remotetest.ReadEverything(ctx, c, id)
		}
	})
}

func ids(ns []remote.Node) []remote.ID {
	var out []remote.ID
	for _, n := range ns[:min(len(ns), 3)] {
		out = append(out, n.ID)
	}
	return out
}
