#!/usr/bin/env bash
# Fetches upstream kine's tags as refs/remotes/upstream/tags/*, apart from the
# fork's own tags: the fork carries tags with upstream names (v0.15.0, ...)
# that point at fork commits, so `deno task policy replay` bases a line on
# these refs when present and `deno task policy tag-origin` checks against them.
# Run it inside the repository; UPSTREAM_URL overrides the upstream address.
set -euo pipefail
url="${UPSTREAM_URL:-https://github.com/k3s-io/kine.git}"
git remote get-url upstream >/dev/null 2>&1 || git remote add upstream "$url"
git fetch --quiet --no-tags upstream '+refs/tags/*:refs/remotes/upstream/tags/*'
