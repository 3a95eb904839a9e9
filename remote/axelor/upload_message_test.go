package axelor

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestUploadMessage(t *testing.T) {
	require.Equal(t, "File name is not allowed", uploadMessage([]byte(`{"error":{"message":"File name is not allowed"}}`)))
	require.Equal(t, "too big", uploadMessage([]byte(`{"error":"too big"}`)))
	require.Contains(t, uploadMessage(nil), "X-File-Name", "an empty 400 says what it usually means")
}
