#!/usr/bin/env bash
# fetch-binaries.sh <tag> <dir>: downloads the binaries and checksum files the
# Release workflow (release.yml) uploaded to release <tag> into <dir>, and
# verifies every binary against its checksum. The image is built from these
# bytes, not from a second compile. The Release workflow may still be running:
# try FETCH_TRIES times, FETCH_WAIT seconds apart (default 60 x 30 s).
set -euo pipefail
tag=$1
dir=$2
tries=${FETCH_TRIES:-60}
wait=${FETCH_WAIT:-30}
arches=(amd64 arm64)

complete() {
  for arch in "${arches[@]}"; do
    [ -s "$dir/kine-$arch" ] && [ -s "$dir/sha256sum-$arch.txt" ] || return 1
  done
}

mkdir -p "$dir"
for ((i = 1; ; i++)); do
  gh release download "$tag" --dir "$dir" --clobber \
    --pattern 'kine-*' --pattern 'sha256sum-*.txt' || true
  complete && break
  if ((i >= tries)); then
    echo "release $tag lacks kine-<arch> and sha256sum-<arch>.txt for ${arches[*]}" >&2
    exit 1
  fi
  sleep "$wait"
done
cd "$dir"
for arch in "${arches[@]}"; do sha256sum -c "sha256sum-$arch.txt"; done
chmod 0755 kine-*
