package invenio_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dmsfs/dmsfs/remote/invenio"
	"github.com/dmsfs/dmsfs/remote/remotetest"
)

// FuzzAnswers: after a normal discovery, every answer is the fuzzer's
// bytes. The client returns errors for what it cannot understand and
// never panics.
func FuzzAnswers(f *testing.F) {
	f.Add([]byte(`{"hits":{"hits":[{"id":"abc12","parent":{"id":"par01"},"metadata":{"title":"T"},"links":{"self":"/api/records/abc12/draft","files":"/api/records/abc12/draft/files"}}],"total":1},"entries":[{"key":"a.txt","size":3,"status":"completed","checksum":"md5:900150983cd24fb0d6963f7d28e17f72","links":{"content":"/c"}}]}`))
	f.Add([]byte(`{"id":"abc12","revision_id":3,"parent":{"id":"par01"},"metadata":{"title":"T","creators":[{"person_or_org":{"name":"X"}}],"publication_date":2026},"errors":[{"field":"metadata.colour","messages":["Unknown field."]}],"links":{"self":"/api/records/abc12/draft"},"entries":[{"key":"a.txt","metadata":{"description":"d","n":[1,{"x":null}]}}]}`))
	f.Add([]byte(`{"status":400,"message":"A validation error occurred.","errors":[{"field":"metadata.title","messages":["Missing data"]}]}`))
	var answer atomic.Pointer[[]byte]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasPrefix(r.URL.Path, "/.well-known/"):
			http.NotFound(w, r)
		case r.URL.Query().Get("size") == "1":
			w.Write([]byte(`{"hits":{"hits":[],"total":0}}`))
		default:
			w.Write(*answer.Load())
		}
	}))
	defer srv.Close()
	f.Fuzz(func(t *testing.T, b []byte) {
		answer.Store(&b)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r, err := invenio.New(ctx, invenio.Config{BaseURL: srv.URL, Token: "fuzz-token", CacheDir: t.TempDir(), MaxRetryWait: time.Millisecond})
		if err != nil {
			return
		}
		defer r.Close()
		root, _ := r.Root(ctx)
		recs, _ := r.List(ctx, root.ID)
		for _, rec := range recs[:min(len(recs), 2)] {
			files, _ := r.List(ctx, rec.ID)
			for _, f := range files[:min(len(files), 2)] {
				remotetest.ReadEverything(ctx, r, f.ID)
			}
			r.PublishPlan(ctx, rec.ID)
			remotetest.ReadEverything(ctx, r, rec.ID)
			v := "fuzzed"
			r.SetField(ctx, rec.ID, rec.Token, "description", &v)
		}
	})
}
