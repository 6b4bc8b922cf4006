"""The dependency cache's protocol, every edge case of it in one place: the URL paths, the key format, and the
scripts of the `deps-fetch` and `deps-store` init containers that speak it from a function's pod.

    GET  /v1/<key>.tar.gz         the tarball, or 404
    PUT  /v1/<key>.tar.gz         store it (atomically)
    POST /v1/<key>/claim          201: you build it; 409: another pod claimed it less than CLAIM_SECONDS ago
    GET  /healthz, /metrics

A key is `<runtime id>-<sha256>`; the hash covers the installer image and command and the dependency file, so a
key's content never changes and no entry is ever replaced by a different one.

The scripts run in the provision image (sh, curl, tar). Any failure to reach the cache means: build in this pod, as
if there were no cache.
"""
from __future__ import annotations

import hashlib
import json
import re

from kubeless_api import meta

ROUTE = re.compile(r"^/v1/([a-z][a-z0-9.+_-]*-[0-9a-f]{64})(\.tar\.gz|/claim)$")
TARBALL, CLAIM = ".tar.gz", "/claim"
CLAIM_SECONDS = 600

# Files the scripts leave in the function's volume, so that the store step knows what `install` added.
PREPARED_LIST = ".kubeless-prepared"
CACHED_MARK = ".kubeless-deps-cached"


def key(runtime_id: str, installer_image: str, installer_command: str, deps: str) -> str:
    """Dependencies are built once per runtime, installer and dependency file, then shared (Kubeless #158)."""
    digest = hashlib.sha256(json.dumps([installer_image, installer_command, deps]).encode()).hexdigest()
    return f"{runtime_id}-{digest}"


# Before `install`: take the dependencies from the cache, or claim the right to build them, or wait for the pod that
# claimed it, for at most 5 minutes.
FETCH_SCRIPT = f"""cd {meta.INSTALL_VOLUME}
ls -A > {PREPARED_LIST}
artifact="$DEPS_CACHE_URL/v1/$DEPS_KEY{TARBALL}"
fetch() {{ curl -fsS --max-time 120 -o /tmp/deps.tar.gz "$artifact" 2>/dev/null && tar -xzf /tmp/deps.tar.gz && \\
  touch {CACHED_MARK} && echo "dependencies $DEPS_KEY come from the cache"; }}
fetch && exit 0
claim=$(curl -s -o /dev/null -w '%{{http_code}}' --max-time 10 -X POST "$DEPS_CACHE_URL/v1/$DEPS_KEY{CLAIM}")
if [ "$claim" = 409 ]; then
  echo "another pod is building dependencies $DEPS_KEY; waiting for it"
  i=0; while [ $i -lt 150 ]; do sleep 2; fetch && exit 0; i=$((i+1)); done
fi
echo "building dependencies $DEPS_KEY in this pod"
"""

# After `install`: share what it added to the volume (everything but the code and the files prepare put there).
STORE_SCRIPT = f"""cd {meta.INSTALL_VOLUME}
[ -f {CACHED_MARK} ] && exit 0
added=$(ls -A | grep -vxF -f {PREPARED_LIST} | grep -v '^\\.kubeless-')
[ -n "$added" ] || exit 0
tar -czf /tmp/deps.tar.gz $added && \\
  curl -fsS --max-time 300 -X PUT --data-binary @/tmp/deps.tar.gz "$DEPS_CACHE_URL/v1/$DEPS_KEY{TARBALL}" \\
  >/dev/null && echo "stored dependencies $DEPS_KEY in the cache" || \\
  echo "warning: could not store dependencies $DEPS_KEY"
"""
