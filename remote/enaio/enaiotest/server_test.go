package enaiotest

import (
	"context"
	"encoding/base64"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dmsfs/dmsfs/remote/enaio/dmsxml"
	"github.com/dmsfs/dmsfs/remote/enaio/rpc"
)

func dial(t *testing.T, s *Server) *rpc.Client {
	t.Helper()
	c, err := rpc.Dial(context.Background(), rpc.Config{Addr: s.Addr(), User: TestUser, Password: TestPassword})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// TestEmptyJobEchoesTypes: krn.EmptyJob answers every parameter with its
// type, the way ECMind tests data types against a real server.
func TestEmptyJobEchoesTypes(t *testing.T) {
	s := Start(t, Options{})
	c := dial(t, s)
	in := []rpc.Param{
		{Name: "Flags", Type: rpc.Integer, Value: "0"},
		{Name: "Text", Type: rpc.String, Value: "Grüße aus Köln – 日本語"},
		{Name: "Yes", Type: rpc.Boolean, Value: "1"},
		{Name: "Pi", Type: rpc.Double, Value: "3.14159"},
		{Name: "Blob", Type: rpc.Base64, Value: base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 255})},
	}
	rep, err := c.Call(context.Background(), rpc.Request{Job: "krn.EmptyJob", Params: in}, nil, true)
	require.NoError(t, err)
	require.Equal(t, in, rep.Params)
}

func TestJobErrors(t *testing.T) {
	s := Start(t, Options{})
	c := dial(t, s)
	ctx := context.Background()
	_, err := c.Call(ctx, rpc.Request{Job: "std.StoreInCacheByID", Params: []rpc.Param{rpc.Int("Flags", 1)}}, nil, true)
	var f *rpc.Failure
	require.ErrorAs(t, err, &f)
	require.Equal(t, int32(-1043332470), f.Reply.Errors[0].Code, "the known code for a missing parameter")
	require.Contains(t, err.Error(), "dwObjectID")

	_, err = c.Call(ctx, rpc.Request{Job: "dms.NoSuchJob"}, nil, true)
	require.ErrorContains(t, err, "Unbekannter Job")

	// Without a login nothing but the session jobs run.
	nc, err := net.Dial("tcp", s.Addr())
	require.NoError(t, err)
	defer nc.Close()
	require.NoError(t, rpc.WriteRequest(nc, rpc.Request{Job: "dms.GetObjDef", Params: []rpc.Param{rpc.Int("Flags", 1)}}))
	rep, err := rpc.ReadReply(nc, nil)
	require.NoError(t, err)
	require.NotZero(t, rep.Return)
	require.Contains(t, rep.Message(), "nicht angemeldet")
}

// TestHistoryInUTF16: without Encoding=UTF-8 the server answers in UTF-16,
// as enaio does; dmsxml reads both.
func TestHistoryInUTF16(t *testing.T) {
	s := Start(t, Options{})
	c := dial(t, s)
	ctx := context.Background()
	for _, enc := range []string{"", "UTF-8"} {
		ps := []rpc.Param{rpc.Int("Flags", 0), rpc.Int("ObjectID", 1004)} // the seeded scan
		if enc != "" {
			ps = append(ps, rpc.Str("Encoding", enc))
		}
		rep, err := c.Call(ctx, rpc.Request{Job: "dms.GetObjectHistory", Params: ps}, nil, true)
		require.NoError(t, err)
		v, _ := rep.Get("History")
		b, err := base64.StdEncoding.DecodeString(v)
		require.NoError(t, err)
		if enc == "" {
			require.Equal(t, []byte{0xFF, 0xFE}, b[:2], "UTF-16LE with a byte order mark")
		}
		var h dmsxml.History
		require.NoError(t, dmsxml.Unmarshal(b, &h))
		require.Len(t, h.Modifications, 3)
		require.Equal(t, dmsxml.ActionVersionCreated, h.Modifications[1].Action.ID)
		require.Equal(t, "Version erzeugt", h.Modifications[1].Action.Text)
	}
}

// TestDroppedConnectionsAreRepeated: reads survive every kind of drop.
func TestDroppedConnectionsAreRepeated(t *testing.T) {
	s := Start(t, Options{})
	c := dial(t, s)
	s.DropEvery(5)
	for range 30 {
		rep, err := c.Call(context.Background(), rpc.Request{Job: "krn.EmptyJob", Params: []rpc.Param{rpc.Str("x", "y")}}, nil, true)
		require.NoError(t, err)
		require.Equal(t, "y", rep.Params[0].Value)
	}
	require.Greater(t, s.Drops(), 5)
}

// TestUnknownParametersAreRefused: a job given a parameter it does not
// take fails naming it (stricter than a real server, on purpose: the
// client's guessed names, remote/enaio/facts.go, must be the test
// server's), and std.StoreInCacheByID's Flags choose the files and the
// preview (DIA) file.
func TestUnknownParametersAreRefused(t *testing.T) {
	s := Start(t, Options{})
	c := dial(t, s)
	ctx := context.Background()
	_, err := c.Call(ctx, rpc.Request{Job: "std.GetDocVersion", Params: []rpc.Param{
		rpc.Int("Flags", 1), rpc.Int("ObjectID", 1), rpc.Str("VersionGUID", "x")}}, nil, true)
	require.ErrorContains(t, err, "unbekannter Parameter 'ObjectID'")
	_, err = c.Call(ctx, rpc.Request{Job: "DMS.GetObjectTypeByID", Params: []rpc.Param{
		rpc.Int("Flags", 0), rpc.Int("ObjectID", 1), rpc.Str("Extra", "1")}}, nil, true)
	require.ErrorContains(t, err, "unbekannter Parameter 'Extra'")

	doc := 0
	s.mu.Lock()
	for id, o := range s.st.Objects {
		if o.Fields["Name"] == "Rechnung 2024-001.pdf" { // seeded
			doc = id
		}
	}
	s.mu.Unlock()
	require.NotZero(t, doc)
	for flags, want := range map[int][]string{0: {"pdf", "dia"}, 1: {"pdf"}, 2: {"dia"}} {
		var exts []string
		_, err := c.Call(ctx, rpc.Request{Job: "std.StoreInCacheByID", Params: []rpc.Param{
			rpc.Int("Flags", flags), rpc.Int("dwObjectID", doc), rpc.Int("Convert", 0)}},
			func(i int, ext string, size int64) (io.Writer, error) {
				if i == 0 {
					exts = nil
				}
				exts = append(exts, ext)
				return io.Discard, nil
			}, true)
		require.NoError(t, err)
		require.Equal(t, want, exts, "Flags %d", flags)
	}
}
