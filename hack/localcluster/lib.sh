# Shared settings for the local cluster scripts: sourced, never run.
KUBELESS_CACHE=${KUBELESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-kubeless}
log() { echo "[localcluster $(date +%T)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
