#!/usr/bin/env bash
# vendor.sh regenerates server/webui/static/vendor/ from the pinned npm
# packages in package.json/package-lock.json, so that `go build` needs no npm
# and the GraphiQL page needs no CDN.
#
# Usage (from anywhere):   server/webui/vendor.sh
#
# It runs `npm ci` in a throw-away directory (node_modules never appears in the
# repo), copies exactly the prebuilt browser files listed below into
# static/vendor/<package>-<version>/, removes their trailing sourceMappingURL
# comments (the .map files are not vendored, and would only 404 in DevTools),
# and writes static/vendor/SHA256SUMS. The output depends only on the lockfile:
# running it twice gives byte-identical files.
#
# To upgrade a package: bump its exact version in package.json, run
# `npm install --package-lock-only --ignore-scripts` here, rerun this script,
# and update the versioned paths in static/graphiql.html (the Go tests fail
# until every referenced asset exists).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/static/vendor"

command -v npm >/dev/null || { echo "vendor.sh: npm is required" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/herald-webui-vendor.XXXXXX")"
trap 'rm -rf "$work"' EXIT

cp "$here/package.json" "$here/package-lock.json" "$work/"
(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)

nm="$work/node_modules"
stage="$work/vendor"
mkdir -p "$stage"

# vendor PACKAGE FILE... : copy FILEs (paths inside the package) flat into
# stage/PACKAGE-VERSION/.
vendor() {
	local pkg="$1"
	shift
	local version
	version="$(node -p "require(process.argv[1]).version" "$nm/$pkg/package.json")"
	local dir="$stage/$pkg-$version"
	mkdir -p "$dir"
	local f
	for f in "$@"; do
		local dst="$dir/$(basename "$f")"
		if grep -Eq '^(//# sourceMappingURL=|/\*# sourceMappingURL=.*\*/$)' "$nm/$pkg/$f"; then
			# Drop the source-map pointer; keep everything else byte for byte.
			sed -e '/^\/\/# sourceMappingURL=/d' -e '/^\/\*# sourceMappingURL=.*\*\/$/d' \
				"$nm/$pkg/$f" >"$dst"
		else
			cp "$nm/$pkg/$f" "$dst"
		fi
		chmod 0644 "$dst"
	done
}

vendor react umd/react.production.min.js LICENSE
vendor react-dom umd/react-dom.production.min.js LICENSE
vendor graphiql graphiql.min.js graphiql.min.css LICENSE
vendor graphql-ws umd/graphql-ws.min.js LICENSE.md

if command -v sha256sum >/dev/null; then
	sha256() { sha256sum "$@"; }
else
	sha256() { shasum -a 256 "$@"; } # macOS
fi
(cd "$stage" && find . -type f | sed 's|^\./||' | LC_ALL=C sort | while read -r f; do sha256 "$f"; done) >"$work/SHA256SUMS"
mv "$work/SHA256SUMS" "$stage/SHA256SUMS"

rm -rf "$out"
mkdir -p "$out"
cp -R "$stage/." "$out/"
find "$out" -type d -exec chmod 0755 {} +

echo "vendor.sh: wrote static/vendor/ (bytes, file):" >&2
(cd "$out" && find . -type f | sed 's|^\./||' | LC_ALL=C sort | while read -r f; do
	printf '%10d  %s\n' "$(wc -c <"$f")" "$f"
done) >&2
