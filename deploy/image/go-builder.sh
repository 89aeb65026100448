#!/usr/bin/env bash
# Makes a local base for the Dockerfile's build stage where the official
# golang image cannot be pulled (CI reaches Debian's repositories and the Go
# module proxy, no image registry): Debian bookworm (minbase, with the
# security and point-release updates) with gcc, libc6-dev and
# ca-certificates from Debian's packages, and this machine's Go toolchain at
# /usr/local/go, laid out as docker.io/library/golang:<version>-bookworm is
# (GOPATH=/go, GOTOOLCHAIN=local). The binary built on it is the one the
# official image builds: same Go release, gcc and static glibc.
#
#   deploy/image/go-builder.sh [TAG]   # default localhost/herald-go:<go version>-bookworm
#   make image GO_IMAGE=localhost/herald-go:1.26.8-bookworm
#
# Needs root, mmdebstrap and podman (or docker). Where this machine's TLS
# goes through a proxy with a CA of its own ($SSL_CERT_FILE), the base
# trusts that bundle for the module downloads of the build stage (through
# SSL_CERT_FILE, not the system store the image's certificates come from).
set -euo pipefail

goroot="$(go env GOROOT)"
gover="$(go env GOVERSION)"
gover="${gover#go}"
tag="${1:-localhost/herald-go:${gover}-bookworm}"
engine="$(command -v podman || command -v docker || true)"
if [ -z "$engine" ]; then echo "go-builder: neither podman nor docker is installed" >&2; exit 1; fi
if ! command -v mmdebstrap >/dev/null; then echo "go-builder: mmdebstrap is not installed (apt-get install mmdebstrap)" >&2; exit 1; fi

if "$engine" image inspect "$tag" >/dev/null 2>&1 && [ "${HERALD_GO_BUILDER_REBUILD:-}" != 1 ]; then
	echo "$tag"   # made before (HERALD_GO_BUILDER_REBUILD=1 makes it again)
	exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
hooks=(--customize-hook="mkdir -p \"\$1/usr/local\"" --customize-hook="copy-in $goroot /usr/local")
env=(--change 'ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
     --change 'ENV GOPATH=/go' --change 'ENV GOTOOLCHAIN=local' --change "ENV GOLANG_VERSION=$gover"
     --change 'WORKDIR /go')
if [ -n "${SSL_CERT_FILE:-}" ] && [ -f "$SSL_CERT_FILE" ]; then
	cp "$SSL_CERT_FILE" "$work/build-ca.pem"
	hooks+=(--customize-hook="mkdir -p \"\$1/etc/herald-builder\"" --customize-hook="copy-in $work/build-ca.pem /etc/herald-builder")
	env+=(--change 'ENV SSL_CERT_FILE=/etc/herald-builder/build-ca.pem')
fi
if [ "$(basename "$goroot")" != go ]; then
	echo "go-builder: GOROOT $goroot is not a directory named go" >&2; exit 1
fi
mmdebstrap --variant=minbase --include=gcc,libc6-dev,ca-certificates "${hooks[@]}" bookworm "$work/rootfs.tar" \
	"deb http://deb.debian.org/debian bookworm main" \
	"deb http://deb.debian.org/debian bookworm-updates main" \
	"deb http://deb.debian.org/debian-security bookworm-security main"
"$engine" import "${env[@]}" "$work/rootfs.tar" "$tag" >/dev/null
echo "$tag"
