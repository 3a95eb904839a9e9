#!/usr/bin/env bash
# The worst stat and ls -l latency in a folder while a 300 MiB file in it
# uploads through the fault proxy adding 20 ms per request (Axelor test
# server), beside the same with no upload. Needs root (FUSE).
#   MIB=300 bash scripts/upload-latency.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DMSFS_UPLOAD_MIB=${MIB:-300} go test -run '^$' -bench '^BenchmarkStatDuringUpload$' -benchtime 1x -timeout 30m ./remote/axelor/ |
  grep -vE 'level=|^(goos|goarch|pkg|cpu):'
