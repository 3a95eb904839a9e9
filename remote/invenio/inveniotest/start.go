package inveniotest

import (
	"net/http/httptest"
	"testing"
)

// TestToken is the token Start's server accepts, for user "tester".
const TestToken = "test-token-not-a-secret"

// Start runs a server for a test on two origins (API and storage), with data
// in a temporary directory, and fails the test if the token ever reached the
// storage endpoint. It returns the server and the API's base URL.
func Start(t testing.TB, opts Options) (*Server, string) {
	t.Helper()
	if opts.Tokens == nil {
		opts.Tokens = map[string]string{TestToken: "tester"}
	}
	s, err := New(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(s.Handler())
	storage := httptest.NewServer(s.StorageHandler())
	s.SetStorageURL(storage.URL)
	t.Cleanup(func() {
		api.Close()
		storage.Close()
		s.Close()
		if leaks := s.TokenLeaks(); len(leaks) > 0 {
			t.Errorf("the token was sent to the storage endpoint: %v", leaks)
		}
	})
	return s, api.URL
}
