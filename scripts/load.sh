#!/usr/bin/env bash
# The long load and fault runs of issue 7, as CI runs them shortly:
#   8 writers + 8 readers for DURATION (default 60s) under -race, and the
#   Axelor fault matrix with a bigger tree (FILES, default 16).
# Prints the numbers; needs root (FUSE) and rsync.
set -euo pipefail
cd "$(dirname "$0")/.."
export CI=true
DMSFS_LOAD_DURATION=${DURATION:-60s} go test -race -count=1 -v -run '^TestLoad$' ./fs/ | grep -E 'load_test|^(---|ok|FAIL)'
DMSFS_FAULT_FILES=${FILES:-16} DMSFS_FAULT_MATRIX=${MATRIX:-/dev/stdout} \
  go test -count=1 -timeout 60m -run '^TestFaults$' ./remote/axelor/ | grep -vE 'trySplice|level='
