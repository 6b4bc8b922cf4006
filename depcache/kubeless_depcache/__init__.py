"""The dependency cache: a function's dependencies are built once per (runtime, installer, dependency file), then
shared by every pod that needs the same ones. `protocol` is what both ends agree on (paths, keys, the init
containers' scripts); `server` is the service."""
