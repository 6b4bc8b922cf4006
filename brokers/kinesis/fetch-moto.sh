#!/bin/sh
# usage: fetch-moto.sh REQUIREMENTS   prints a folder whose site-packages/ holds REQUIREMENTS installed for python3.11
#
# The kinesis image's Python packages come from PyPI, which only the build machine reaches: the host's pip installs
# the image's wheels (CPython 3.11 on glibc x86_64, binary wheels only, so nothing is compiled against the host)
# into a folder cached outside the clone under the hash of the requirements and of this script (its pip flags). The
# folder counts only once `.complete` exists.
#
# pip's own byte-code is skipped: the image's files get mtime 0, which would make every timestamp-checked .pyc
# stale. unchecked-hash .pyc files are valid whatever the mtime, and cut the server's start (moto imports much).
set -eu

requirements=$1
digest=$(cat "$requirements" "$0" | sha256sum | cut -c 1-12)
cache=${KUBELESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-kubeless}/kinesis-moto-$digest
if [ -f "$cache/.complete" ]; then
  echo "$cache"
  exit 0
fi

rm -rf "$cache"
mkdir -p "$cache"
# (--no-warn-conflicts: pip would compare the target with the build machine's own packages)
python3 -m pip install -q --disable-pip-version-check --no-warn-conflicts --root-user-action=ignore --no-compile \
  --target "$cache/site-packages" --implementation cp --python-version 3.11 --abi cp311 --only-binary=:all: \
  --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_34_x86_64 \
  -r "$requirements" >&2
# console scripts whose first line names the build machine's interpreter: the image runs `python3 -m moto.server`
rm -rf "$cache/site-packages/bin"
python3 -m compileall -q -j 0 --invalidation-mode unchecked-hash "$cache/site-packages" >&2
touch "$cache/.complete"
echo "$cache"
