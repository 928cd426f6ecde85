#!/usr/bin/env bash
# Builds npm:kerberos, the native GSSAPI addon kine loads only when a PostgreSQL DSN asks for
# Kerberos. `deno task start` never runs npm install scripts, so this is a separate, offline step:
# it needs libkrb5's headers (Debian: libkrb5-dev), a C++ tool chain, Node's headers under
# /usr/include/node, and node-gyp (npm ships one). As root with apt it installs libkrb5-dev.
set -euo pipefail
cd "$(dirname "$0")/.."
deno="${DENO:-deno}"

pkg_dir() { ls -d node_modules/.deno/kerberos@*/node_modules/kerberos 2>/dev/null | head -n 1; }

"$deno" install >/dev/null 2>&1 || true
dir=$(pkg_dir)
if [ -n "$dir" ] && [ -f "$dir/build/Release/kerberos.node" ]; then
  echo "npm:kerberos addon: already built ($dir/build/Release/kerberos.node)"
  exit 0
fi

if [ ! -f /usr/include/gssapi/gssapi.h ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing libkrb5-dev (for npm:kerberos) ..." >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libkrb5-dev) \
      >/dev/null 2>&1
  fi
  [ -f /usr/include/gssapi/gssapi.h ] || {
    echo "missing GSSAPI headers: install Debian package libkrb5-dev" >&2
    exit 1
  }
fi
[ -f /usr/include/node/node_api.h ] || {
  echo "missing Node.js headers in /usr/include/node: install Node.js with its headers" >&2
  exit 1
}
npm_bin=$(dirname "$(readlink -f "$(command -v npm)")")
[ -x "$npm_bin/node-gyp-bin/node-gyp" ] || {
  echo "missing node-gyp: expected npm's copy in $npm_bin/node-gyp-bin" >&2
  exit 1
}

# Deno remembers that it skipped the package's scripts; forget that so they run now.
[ -n "$dir" ] && rm -f "$dir/../../.scripts-run"
PATH="$npm_bin/node-gyp-bin:$PATH" npm_config_nodedir=/usr \
  "$deno" install --allow-scripts=npm:kerberos >/dev/null
dir=$(pkg_dir)
[ -f "$dir/build/Release/kerberos.node" ] || {
  echo "building npm:kerberos failed; run: PATH=$npm_bin/node-gyp-bin:\$PATH npm_config_nodedir=/usr deno install --allow-scripts=npm:kerberos" >&2
  exit 1
}
echo "npm:kerberos addon: built ($dir/build/Release/kerberos.node)"
