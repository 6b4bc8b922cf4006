"""The dependency cache: a function's dependencies are built once per key (the installer, the dependency file, the
install environment and, unless kubeless-config's deps-cache-shared, the namespace), then shared by every pod that
needs the same ones, each proving its namespace with a service-account token. `protocol` is what both ends agree on
(paths, keys, tokens, the init containers' scripts); `server` is the service."""
