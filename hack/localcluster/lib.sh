# Shared settings for the local cluster scripts: sourced, never run.
# The cache folder; an empty variable counts as unset. hack/images/build.py's cache_root() is the Python side's one
# statement of this rule, and tests/unit/test_image_builder.py checks that the two agree.
KUBELESS_CACHE=${KUBELESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-kubeless}
log() { echo "[localcluster $(date +%T)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
