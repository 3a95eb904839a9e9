#!/usr/bin/env bash
# The long load and fault runs, which CI runs shortly:
#   8 writers + 8 readers for DURATION (default 60s) under -race, and the
#   Axelor and Invenio fault matrices with a bigger tree (FILES, default 16).
# Prints the numbers; needs root (FUSE) and rsync.
set -euo pipefail
cd "$(dirname "$0")/.."
export CI=true
DMSFS_LOAD_DURATION=${DURATION:-60s} go test -race -count=1 -v -run '^TestLoad$' ./fs/ | grep -E 'load_test|^(---|ok|FAIL)'
out=$(mktemp -d)
for backend in axelor invenio; do
  DMSFS_FAULT_RATES=all DMSFS_FAULT_FILES=${FILES:-16} DMSFS_FAULT_MATRIX=$out/$backend \
    go test -count=1 -timeout 60m -run '^TestFaults$' ./remote/$backend/ | grep -vE 'trySplice|level='
  echo "fault matrix ($backend):"; cat "$out/$backend"
done
rm -rf "$out"
