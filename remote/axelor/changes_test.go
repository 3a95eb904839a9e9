package axelor_test

import (
	"testing"

	"github.com/dmsfs/dmsfs/remote/axelor/axelortest"
	"github.com/dmsfs/dmsfs/remote/remotetest"
)

// TestPollCost prints what a change poll costs on Axelor: one search for
// what changed (and one per 500 cached documents, none here, for deletions).
func TestPollCost(t *testing.T) {
	srv, url := newServer(t, axelortest.Options{})
	remotetest.PollCost(t, newClient(t, url), func() int { return srv.Requests("") })
}
