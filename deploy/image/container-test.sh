#!/usr/bin/env bash
# Runs Herald's image as a real container, as an operator would, where a
# container runtime works (a laptop; not the sandboxes CI runs in, where
# the image is taken apart and its entrypoint run instead: see
# deploy/image/image_test.go). It starts the container with a read-only
# root filesystem and a fresh volume, waits for /readyz, checks that the
# first start printed the admin key, then stops it with SIGTERM and checks
# that it exited cleanly within its grace.
#
#   deploy/image/container-test.sh podman localhost/herald:dev   # or: make image-test
set -euo pipefail
engine="${1:?usage: container-test.sh ENGINE IMAGE}"
image="${2:?usage: container-test.sh ENGINE IMAGE}"
name="herald-image-test-$$"
volume="herald-image-test-$$"
port="${HERALD_IMAGE_TEST_PORT:-18080}"
cleanup() {
	"$engine" rm -f "$name" >/dev/null 2>&1 || true
	"$engine" volume rm -f "$volume" >/dev/null 2>&1 || true
}
trap cleanup EXIT

"$engine" volume create "$volume" >/dev/null
"$engine" run -d --name "$name" --read-only --tmpfs /tmp \
	-v "$volume":/var/lib/herald -p "127.0.0.1:$port:8080" "$image" >/dev/null
for i in $(seq 1 60); do
	if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then break; fi
	if [ "$i" = 60 ]; then echo "herald did not become ready:"; "$engine" logs "$name"; exit 1; fi
	sleep 1
done
echo "ready: $(curl -fsS "http://127.0.0.1:$port/readyz")"
if ! "$engine" logs "$name" 2>&1 | grep -q 'hrld_'; then
	echo "the first start printed no admin key:"; "$engine" logs "$name"; exit 1
fi
start=$(date +%s)
"$engine" stop --time 15 "$name" >/dev/null
took=$(( $(date +%s) - start ))
code="$("$engine" inspect --format '{{.State.ExitCode}}' "$name")"
if [ "$code" != 0 ]; then echo "herald exited with $code:"; "$engine" logs "$name"; exit 1; fi
echo "ok: started, ready, and stopped cleanly on SIGTERM in ${took}s"
