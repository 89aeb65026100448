#!/usr/bin/env bash
# build.sh builds Herald's web app (the operator console and the customer
# portal: Preact sources in src/) with Vite into ../static/app/, which the Go
# binary embeds, so that `go build` and `make run` need no Node. `make assets` runs it; CI runs it and checks that the
# committed build matches (git diff --exit-code).
#
# Usage (from anywhere):   server/webui/app/build.sh
#
# It copies the sources to a throw-away directory, installs the pinned
# packages there with `npm ci` (node_modules never appears in the repo, and
# no package's files can reach the Go tool's ./... patterns), and builds.
# The output depends only on the sources and the lockfile: file names carry
# a hash of their content, and two builds give byte-identical files.
#
# To upgrade a package: change its exact version in package.json, run
# `npm install --package-lock-only --ignore-scripts` here, and rerun this.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/../static/app"

command -v npm >/dev/null || { echo "build.sh: npm is required" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/herald-webui-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT

cp -R "$here/package.json" "$here/package-lock.json" "$here/vite.config.js" "$here"/*.html "$here/src" "$work/"
(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
(cd "$work" && HERALD_PORTAL_OUT="$out" ./node_modules/.bin/vite build --logLevel warn >&2)
find "$out" -type f -exec chmod 0644 {} +
echo "build.sh: wrote static/app/ (bytes, file):" >&2
(cd "$out" && find . -type f | sed 's|^\./||' | LC_ALL=C sort | while read -r f; do
	printf '%10d  %s\n' "$(wc -c <"$f")" "$f"
done) >&2
