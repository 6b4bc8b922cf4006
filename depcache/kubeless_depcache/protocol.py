"""The dependency cache's protocol, every edge case of it in one place: the URL paths, the key format, the tokens, and
the scripts of the `deps-fetch` and `deps-store` init containers that speak it from a function's pod.

    GET  /v1/<key>.tar.gz         the tarball, or 404
    GET  /v1/<key>.sha256         its sha256 (hex), recorded when it was stored
    PUT  /v1/<key>.tar.gz         store it, once: 409 if the key is stored already (entries are immutable)
    POST /v1/<key>/claim          201: you build it; 409: stored, or another pod claimed it less than CLAIM_SECONDS ago
    GET  /healthz, /metrics

A key is `<runtime id>-<sha256>@<namespace>`: the namespace that owns it. The hash covers everything that changes
what the install step produces (see `key`), so a key's content never changes, a stored entry is never replaced, and a
function whose own environment points pip or npm elsewhere gets a key of its own. With kubeless-config's
`deps-cache-shared: "true"` a key has no owner, `<runtime id>-<sha256>`, and one build serves every namespace (a
namespace name never contains `@`, so the two forms cannot be confused).

Every /v1 request carries `Authorization: Bearer <token>`, a Kubernetes service-account token of audience AUDIENCE:
each function pod that uses the cache has one in a projected volume (renewed by the kubelet, bound to the pod, valid
for TOKEN_SECONDS), mounted at TOKEN_DIR into deps-fetch and deps-store only, never into `install`, which runs the
packages' own code. The cache asks the API server who holds the token (a TokenReview, made as its own service
account): 401 without a token, 403 if the token is not valid for AUDIENCE, or if it is a service account's of
another namespace than the key's owner, 503 if the review cannot be made. Reading a tarball needs the owner's token
too: private packages do not leave their namespace. So no pod can read, claim or store under another namespace's
key: it can neither squat a claim nor put its own build where another namespace's function will unpack it. A key
without an owner is open to every pod with a valid token: sharing is for namespaces whose authors trust each other
(entries are still written once, by the first writer, and never replaced).

The scripts run in the provision image (sh, curl, tar, sha256sum). Any failure to reach the cache, or any refusal,
means: build in this pod, as if there were no cache. A tarball is unpacked only if it hashes to the sha256 recorded
when it was stored.
"""
from __future__ import annotations

import hashlib
import json
import re

from kubeless_api import meta

# a DNS label, as namespace names are
NAMESPACE = r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?"
ROUTE = re.compile(rf"^/v1/([a-z][a-z0-9.+_-]*-[0-9a-f]{{64}}(?:@{NAMESPACE})?)(\.tar\.gz|\.sha256|/claim)$")
TARBALL, DIGEST, CLAIM = ".tar.gz", ".sha256", "/claim"
CLAIM_SECONDS = 600
DIGEST_HEADER = "X-Kubeless-Sha256"  # a PUT's sha256 of its body, checked by the cache and recorded

# A function pod's token: a projected service-account token for this audience, at TOKEN_DIR/TOKEN_FILE.
AUDIENCE = "kubeless-deps-cache"
TOKEN_SECONDS = 600  # the shortest the API server issues; the kubelet renews it at 80 % of that
TOKEN_DIR = "/var/run/kubeless/deps-cache"
TOKEN_FILE = "token"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"  # + <namespace>:<name>, a service account's user name

# Files the scripts leave in the function's volume, so that the store step knows what `install` added.
PREPARED_LIST = ".kubeless-prepared"
CACHED_MARK = ".kubeless-deps-cached"


def key(runtime_id: str, *, installer_image: str, installer_command: str, deps: str, env: list[dict],
        resolution: dict, namespace: str) -> str:
    """The name of what an install step produces, from everything that changes it: the installer's image and command,
    the dependency file, the step's environment (kubeless-config's install-env, the function's own variables, the
    runtime's), the pod fields that change where names resolve (a host alias can turn pypi.org into another index),
    and the namespace that owns it (empty: shared with every namespace, see KubelessConfig.deps_cache_shared).

    Dependencies are then built once per key, and shared by every pod that computes the same (Kubeless #158)."""
    inputs = {"image": installer_image, "command": installer_command, "deps": deps, "env": env,
              "resolution": resolution, "namespace": namespace}
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return f"{runtime_id}-{digest}@{namespace}" if namespace else f"{runtime_id}-{digest}"


def owner(cache_key: str) -> str | None:
    """The namespace whose pods alone may use `cache_key`; None: a shared key, any valid token will do."""
    _, at, namespace = cache_key.rpartition("@")
    return namespace if at else None


def token_namespace(username: str) -> str | None:
    """The namespace of a service account's user name (`system:serviceaccount:<namespace>:<name>`), if it is one."""
    if not username.startswith(SERVICE_ACCOUNT_PREFIX):
        return None
    namespace, colon, name = username[len(SERVICE_ACCOUNT_PREFIX):].partition(":")
    return namespace if colon and namespace and name else None


def bearer(header: str | None) -> str | None:
    """The token of an Authorization header, if it is a bearer one."""
    scheme, _, value = (header or "").strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


# The token as a header file for curl's `-H @file`: never on a command line.
_AUTH = (f"printf 'Authorization: Bearer %s\\n' \"$(cat {TOKEN_DIR}/{TOKEN_FILE} 2>/dev/null)\" "
         f"> /tmp/deps-auth")

# Before `install`: take the dependencies from the cache, or claim the right to build them, or wait for the pod that
# claimed it, for at most 5 minutes. fetch: 0 unpacked, 1 not in the cache (yet), 2 there but not what was stored.
FETCH_SCRIPT = f"""cd {meta.INSTALL_VOLUME}
ls -A > {PREPARED_LIST}
{_AUTH}
artifact="$DEPS_CACHE_URL/v1/$DEPS_KEY"
fetch() {{
  curl -fsS --max-time 120 -H @/tmp/deps-auth -o /tmp/deps.tar.gz "$artifact{TARBALL}" 2>/dev/null && \\
    curl -fsS --max-time 10 -H @/tmp/deps-auth -o /tmp/deps.sha256 "$artifact{DIGEST}" 2>/dev/null || return 1
  if ! printf '%s  /tmp/deps.tar.gz\\n' "$(cat /tmp/deps.sha256)" | sha256sum -c - >/dev/null 2>&1; then
    echo "dependencies $DEPS_KEY from the cache do not hash to their recorded sha256: not unpacking them"
    return 2
  fi
  tar -xzf /tmp/deps.tar.gz && touch {CACHED_MARK} && echo "dependencies $DEPS_KEY come from the cache"
}}
fetch; found=$?
[ "$found" = 0 ] && exit 0
if [ "$found" = 1 ]; then
  claim=$(curl -s -o /dev/null -w '%{{http_code}}' --max-time 10 -X POST -H @/tmp/deps-auth "$artifact{CLAIM}")
  case "$claim" in
    201) ;;
    409)
      echo "another pod is building dependencies $DEPS_KEY; waiting for it"
      i=0
      while [ $i -lt 150 ]; do
        sleep 2; fetch; found=$?
        [ "$found" = 1 ] || break
        i=$((i+1))
      done
      [ "$found" = 0 ] && exit 0 ;;
    *) echo "the dependency cache refused the claim of $DEPS_KEY (HTTP $claim)" ;;
  esac
fi
echo "building dependencies $DEPS_KEY in this pod"
"""

# After `install`: share what it added to the volume (everything but the code and the files prepare put there).
STORE_SCRIPT = f"""cd {meta.INSTALL_VOLUME}
[ -f {CACHED_MARK} ] && exit 0
added=$(ls -A | grep -vxF -f {PREPARED_LIST} | grep -v '^\\.kubeless-')
[ -n "$added" ] || exit 0
{_AUTH}
tar -czf /tmp/deps.tar.gz $added || {{ echo "warning: could not pack dependencies $DEPS_KEY"; exit 0; }}
digest=$(sha256sum /tmp/deps.tar.gz | cut -d ' ' -f 1)
stored=$(curl -s -o /tmp/deps.answer -w '%{{http_code}}' --max-time 300 -X PUT -H @/tmp/deps-auth \\
  -H "{DIGEST_HEADER}: $digest" --data-binary @/tmp/deps.tar.gz "$DEPS_CACHE_URL/v1/$DEPS_KEY{TARBALL}")
case "$stored" in
  201) echo "stored dependencies $DEPS_KEY in the cache" ;;
  409) echo "dependencies $DEPS_KEY were stored meanwhile by another pod" ;;
  *) echo "warning: could not store dependencies $DEPS_KEY (HTTP $stored: $(cat /tmp/deps.answer 2>/dev/null))" ;;
esac
"""
