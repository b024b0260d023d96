#!/usr/bin/env bash
# Build a local base image for registry/Dockerfile* where no image can be pulled: Debian
# bookworm (minbase) with Python 3.11 and venv from Debian's packages, made with
# debootstrap and `docker import`. Prints the image's name on stdout.
#
# The tag is a hash of this script, so a machine builds it once and every later call (the
# tests, `make images BASE_IMAGE=$(scripts/build-base-image.sh)`) finds it. Needs root,
# debootstrap and Debian's mirror (MIRROR); exits 1 saying what is missing otherwise.
set -euo pipefail

MIRROR=${MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
PACKAGES=python3,python3-venv,ca-certificates
REPO=winslow-local/debian-python
TAG=$SUITE-$(sha256sum "$0" | cut -c1-12)
IMAGE=$REPO:$TAG

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "$IMAGE"
  exit 0
fi
command -v debootstrap >/dev/null 2>&1 || { echo "debootstrap is not installed (Debian: apt-get install debootstrap)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "debootstrap needs root to build $IMAGE" >&2; exit 1; }

root=$(mktemp -d /tmp/winslow-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "building $IMAGE with debootstrap (a minute or two)" >&2
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root/fs" "$MIRROR" >"$root/log" 2>&1 \
  || { tail -20 "$root/log" >&2; echo "debootstrap failed; see the lines above" >&2; exit 1; }
# What only the build needed: package files and indexes, logs.
rm -rf "$root"/fs/var/cache/apt/archives/*.deb "$root"/fs/var/lib/apt/lists/* "$root"/fs/var/log/*
tar -C "$root/fs" --numeric-owner -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  - "$IMAGE" >/dev/null
echo "$IMAGE"
