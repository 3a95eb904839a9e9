package invenio_test

import (
	"testing"

	"github.com/dmsfs/dmsfs/remote/invenio"
	"github.com/dmsfs/dmsfs/remote/invenio/inveniotest"
	"github.com/dmsfs/dmsfs/remote/remotetest"
)

// TestPollCost prints what a change poll costs on Invenio: one search of
// the user's records, newest first.
func TestPollCost(t *testing.T) {
	repo, srv := connect(t, inveniotest.Options{}, invenio.Config{})
	remotetest.PollCost(t, repo, func() int { return srv.Requests("") })
}
