# Herald's container image: one static binary on an empty base.
#
#   make image                  # podman or docker, whichever is installed
#   docker build -t herald .    # the same, by hand
#
# The image holds the herald binary (cgo SQLite linked statically, Go's own
# DNS resolver and user lookups, time zone data embedded), CA certificates
# and a passwd entry for its user: no shell, no package manager. It runs as
# uid 65532 with its data in the /var/lib/herald volume and serves on 8080.
#
# GO_IMAGE is the build stage's base: any Debian bookworm with Go at
# /usr/local/go, gcc and libc6-dev, such as the official golang image
# (the default). Offline builders can make one from Debian's packages and a
# Go toolchain (deploy/image/go-builder.sh does; CI uses it).

ARG GO_IMAGE=docker.io/library/golang:1.26.8-bookworm

FROM ${GO_IMAGE} AS build
WORKDIR /src
ENV CGO_ENABLED=1 GOFLAGS=-buildvcs=false
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
# netgo, osusergo: Go's resolver and user lookups, not glibc's (which a
# static binary cannot load). timetzdata: zone data in the binary.
# sqlite_omit_load_extension: SQLite without dlopen. -s -w: no symbol
# table or DWARF.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -tags 'netgo osusergo timetzdata sqlite_omit_load_extension' \
      -ldflags "-s -w -extldflags=-static -X github.com/heraldhq/herald/server.Version=${VERSION}" \
      -o /rootfs/usr/local/bin/herald ./cmd/herald \
 && mkdir -p /rootfs/etc/ssl/certs /rootfs/var/lib/herald /rootfs/tmp \
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
 && echo 'herald:x:65532:65532:herald:/var/lib/herald:/sbin/nologin' > /rootfs/etc/passwd \
 && echo 'herald:x:65532:' > /rootfs/etc/group \
 && chown 65532:65532 /rootfs/var/lib/herald \
 && chmod 0700 /rootfs/var/lib/herald \
 && chmod 1777 /rootfs/tmp

FROM scratch
ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=https://github.com/heraldhq/herald
COPY --from=build /rootfs/ /
USER 65532:65532
WORKDIR /var/lib/herald
ENV HERALD_DB=/var/lib/herald/herald.db \
    HERALD_ADDR=:8080 \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
VOLUME ["/var/lib/herald"]
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/herald"]
CMD ["serve"]
LABEL org.opencontainers.image.title="Herald" \
      org.opencontainers.image.description="Self-hosted webhook delivery: signed, retried, logged, live" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
