#!/usr/bin/env bash
# Benchmark dmsfs against rclone mount and the protocol limit, side by side
# in one run, and print one table. Needs root (drop_caches, mounting), fuse3,
# rsync, curl and rclone (apt-get install -y fuse3 rsync curl rclone).
#
#   scripts/bench.sh [WORKDIR]     (default: a fresh directory under /tmp)
#
# Figures: cold = first access after mounting and dropping the kernel caches;
# warm = the same again. Times in seconds (lower is better), reads in MB/s
# (higher is better). The dmsfs/rclone and dmsfs/limit columns divide the
# dmsfs figure by the other one.
set -euo pipefail
export PATH="$PATH:/usr/local/go/bin"
cd "$(dirname "$0")/.."

for tool in rclone rsync curl fusermount3; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install -y rclone rsync curl fuse3)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "bench: run as root (it drops the kernel caches)" >&2; exit 1; }

WORK=${1:-$(mktemp -d /tmp/dmsfs-bench.XXXXXX)}
mkdir -p "$WORK"
BIN=$WORK/bin
CORPUS=$WORK/corpus
MD=$WORK/mnt-dmsfs
MR=$WORK/mnt-rclone
MW=$WORK/mnt-dmsfs-writeback
mkdir -p "$BIN" "$MD" "$MR" "$MW"
pids=()

cleanup() {
  set +e
  "$BIN/dmsfs" unmount "$MD" >/dev/null 2>&1
  "$BIN/dmsfs" unmount "$MW" >/dev/null 2>&1
  fusermount3 -u "$MR" >/dev/null 2>&1 || umount -l "$MR" >/dev/null 2>&1
  for p in "${pids[@]}"; do kill "$p" >/dev/null 2>&1; done
  wait >/dev/null 2>&1
  [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

say() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
# secs CMD…: run a command, print its wall time in seconds.
secs() {
  local s e
  s=$(date +%s%N)
  "$@" >/dev/null
  e=$(date +%s%N)
  awk -v d=$((e - s)) 'BEGIN{printf "%.3f", d/1e9}'
}
mbps() { awk -v b="$1" -v s="$2" 'BEGIN{printf "%.0f", b/1e6/s}'; }
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

say "building"
go build -o "$BIN/dmsfs" ./cmd/dmsfs
go build -o "$BIN/benchtool" ./scripts/benchtool

say "generating the corpus in $CORPUS"
"$BIN/benchtool" gen "$CORPUS"
BIGSIZE=$(stat -c %s "$CORPUS/big.bin")

say "starting dmsfs serve --protocol axelor and loading the corpus through the protocol"
"$BIN/dmsfs" serve --protocol axelor --data "$WORK/axelor" --addr 127.0.0.1:0 >"$WORK/serve.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q '^URL:' "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
URL=$(sed -n 's/^URL: //p' "$WORK/serve.out")
HTTPURL=${URL#axelor+}
eval "$("$BIN/benchtool" load "$URL" dmsfs "$WORK/axelor/password" "$CORPUS")"

say "serving the same files with rclone serve webdav"
mkdir -p "$WORK/plain"
cp -al "$CORPUS/big.bin" "$CORPUS/small" "$WORK/plain/"
RPORT=$(freeport)
rclone serve webdav "$WORK/plain" --addr "127.0.0.1:$RPORT" >"$WORK/rclone-serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$RPORT/" && break; sleep 0.1; done

say "mounting both"
"$BIN/dmsfs" mount --daemon --cache-dir "$WORK/dmsfs-cache" --user dmsfs --password-file "$WORK/axelor/password" \
  --log-file "$WORK/dmsfs.log" "$URL" "$MD" >"$WORK/mount.out"
DPID=$(sed -n 's/.*(pid \([0-9]*\),.*/\1/p' "$WORK/mount.out")
rclone mount ":webdav,url='http://127.0.0.1:$RPORT':" "$MR" --vfs-cache-mode writes \
  --cache-dir "$WORK/rclone-cache" --log-file "$WORK/rclone-mount.log" &
pids+=($!)
for _ in $(seq 300); do [ -e "$MR/big.bin" ] && break; sleep 0.1; done
[ -e "$MR/big.bin" ] || { echo "bench: rclone mount did not come up; see $WORK/rclone-mount.log" >&2; exit 1; }

declare -A R
for side in dmsfs rclone; do
  M=$MD; [ $side = rclone ] && M=$MR
  say "measuring $side"
  drop
  R[$side,lscold]=$(secs ls -lR "$M/small")
  R[$side,lswarm]=$(secs ls -lR "$M/small")
  drop
  R[$side,readcold]=$(mbps "$BIGSIZE" "$(secs cat "$M/big.bin")")
  R[$side,readwarm]=$(mbps "$BIGSIZE" "$(secs cat "$M/big.bin")")
  drop
  R[$side,rsynccold]=$(secs rsync -a "$M/small/" "$WORK/rsync-$side/")
  R[$side,rsyncagain]=$(secs rsync -a "$M/small/" "$WORK/rsync-$side/")
  R[$side,cpin]=$(secs cp -r "$CORPUS/in" "$M/in")
  R[$side,write]=$(secs cp "$CORPUS/write.bin" "$M/write.bin")
done
diff -r "$CORPUS/small" "$WORK/rsync-dmsfs" >/dev/null || { echo "bench: dmsfs returned wrong bytes" >&2; exit 1; }

say "cp of the 200 files with --write-back: until cp returns, and until the server confirmed (dmsfs sync)"
"$BIN/dmsfs" mount --daemon --write-back 1ms --cache-dir "$WORK/dmsfs-cache-wb" --user dmsfs --password-file "$WORK/axelor/password" \
  --log-file "$WORK/dmsfs-wb.log" "$URL" "$MW" >/dev/null
s=$(date +%s%N)
cp -r "$CORPUS/in" "$MW/in-wb"
m=$(date +%s%N)
"$BIN/dmsfs" sync "$MW" >/dev/null
e=$(date +%s%N)
WBCP=$(awk -v d=$((m - s)) 'BEGIN{printf "%.3f", d/1e9}')
WBSYNC=$(awk -v d=$((e - s)) 'BEGIN{printf "%.3f", d/1e9}')

say "measuring the local limits of listing and copying"
drop
LSCOLD=$(secs ls -lR "$CORPUS/small")
LSWARM=$(secs ls -lR "$CORPUS/small")
drop
RSCOLD=$(secs rsync -a "$CORPUS/small/" "$WORK/rsync-local/")
RSAGAIN=$(secs rsync -a "$CORPUS/small/" "$WORK/rsync-local/")

say "peak RSS while reading the 1 GiB file four times"
for _ in 1 2; do drop; cat "$MD/big.bin" >/dev/null; done
RSS=$(awk '/VmHWM/{print $2}' "/proc/$DPID/status")

say "measuring the limits"
curl -s -c "$WORK/cookies" -H 'Content-Type: application/json' -H 'Accept: application/json' \
  -H 'X-Requested-With: XMLHttpRequest' -d "{\"username\":\"dmsfs\",\"password\":\"$(cat "$WORK/axelor/password")\"}" \
  "$HTTPURL/callback" >/dev/null
drop
CURL=$(mbps "$BIGSIZE" "$(secs curl -s -b "$WORK/cookies" -H 'X-Requested-With: XMLHttpRequest' -o /dev/null "$HTTPURL/ws/dms/download/$BIGID")")
cat "$CORPUS/big.bin" >/dev/null
LOCAL=$(mbps "$BIGSIZE" "$(secs cat "$CORPUS/big.bin")")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b == "" || b == 0) print "-"; else printf "%.2f", a/b }'; }
row() { printf '%-34s %10s %10s %10s %13s %12s\n' "$1" "$2" "$3" "$4" "$(ratio "$2" "$3")" "$(ratio "$2" "$4")"; }
printf '\n%-34s %10s %10s %10s %13s %12s\n' figure dmsfs rclone limit dmsfs/rclone dmsfs/limit
row "cold sequential read 1 GiB, MB/s" "${R[dmsfs,readcold]}" "${R[rclone,readcold]}" "$CURL"
row "warm re-read 1 GiB, MB/s" "${R[dmsfs,readwarm]}" "${R[rclone,readwarm]}" "$LOCAL"
row "ls -lR 5,000 files cold, s" "${R[dmsfs,lscold]}" "${R[rclone,lscold]}" "$LSCOLD"
row "ls -lR 5,000 files warm, s" "${R[dmsfs,lswarm]}" "${R[rclone,lswarm]}" "$LSWARM"
row "rsync -a 5,000 files cold, s" "${R[dmsfs,rsynccold]}" "${R[rclone,rsynccold]}" "$RSCOLD"
row "rsync -a 5,000 files again, s" "${R[dmsfs,rsyncagain]}" "${R[rclone,rsyncagain]}" "$RSAGAIN"
row "cp 200 x 20 KiB in, s" "${R[dmsfs,cpin]}" "${R[rclone,cpin]}" ""
row "  same, --write-back: cp returns, s" "$WBCP" "${R[rclone,cpin]}" ""
row "  same, --write-back: confirmed, s" "$WBSYNC" "${R[rclone,cpin]}" ""
row "write 256 MiB, s" "${R[dmsfs,write]}" "${R[rclone,write]}" ""
printf '\nlimits: curl from the dmsfs server (cold read), cat of a local copy from the page cache (warm re-read),\n        ls -lR and rsync -a of the local corpus (listing and copying)\n'
printf 'dmsfs peak RSS: %d MiB (--cache-size 256 MiB)\n' $((RSS / 1024))
printf 'dmsfs writes are confirmed by the server when cp returns (with --write-back: when dmsfs sync returns);\nrclone (--vfs-cache-mode writes) only spools them when cp returns\n'
