#!/bin/sh
# The nodejs18 runtime's `install` step: the dependencies of the function's package.json ($KUBELESS_DEPS_FILE, in
# $KUBELESS_INSTALL_VOLUME) into $KUBELESS_INSTALL_VOLUME/node_modules, production ones only.
# The registry is $KUBELESS_NPM_REGISTRY, else npm's own npm_config_registry (kubeless-config's install-env may
# set either; a function's --env overrides it). With neither, npm works offline and never touches the network:
# only a package.json without dependencies installs, and the error names the first package it could not fetch.
# Any other npm setting comes from npm_config_* variables (scoped registries, auth tokens, proxies).
set -eu
volume="${KUBELESS_INSTALL_VOLUME:-/kubeless}"
if [ -n "${KUBELESS_NPM_REGISTRY:-}" ]; then
  export npm_config_registry="$KUBELESS_NPM_REGISTRY"
elif [ -z "${npm_config_registry:-}${NPM_CONFIG_REGISTRY:-}" ]; then
  export npm_config_offline=true
  echo "no npm registry (KUBELESS_NPM_REGISTRY or npm_config_registry): installing offline" >&2
fi
export npm_config_cache="${npm_config_cache:-${HOME:-/tmp}/.npm}" npm_config_update_notifier=false
exec npm install --omit=dev --no-audit --no-fund --prefix="$volume"
