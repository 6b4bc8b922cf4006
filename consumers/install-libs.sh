#!/bin/sh
# usage: install-libs.sh ROOTFS REQUIREMENTS   (a `run` step of the consumers recipe, run by hack/images/build.py)
#
# The broker clients come from PyPI, not Debian (bookworm's python3-kafka 2.0.2 cannot speak to Kafka 4): pip
# downloads the pinned pure-Python wheels once into a cache keyed by the requirements file, outside the repository,
# and this copies them into the image's /app/lib. Wheels only and no dependency resolution: the file pins each one,
# so the image does not depend on what PyPI serves that day.
set -eu

rootfs=$1
requirements=$2
cache=${KUBELESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-kubeless}/consumer-libs-$(sha256sum "$requirements" | cut -c1-12)

if [ ! -f "$cache/.complete" ]; then
  rm -rf "$cache"
  mkdir -p "$cache"
  python3 -m pip install -q --disable-pip-version-check --no-deps --only-binary=:all: --no-compile \
    --implementation py --python-version 3.11 --target "$cache/lib" -r "$requirements" >&2
  touch "$cache/.complete"
fi
mkdir -p "$rootfs/app"
cp -R "$cache/lib" "$rootfs/app/lib"
find "$rootfs/app/lib" -name __pycache__ -prune -exec rm -rf {} +
