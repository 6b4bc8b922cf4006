# The go1.26 runtime (a bare base: the compile step builds /kubeless/server) and its compile image.
# Build from the repository root:
#   docker build -f runtimes/dockerfiles/go.Dockerfile --target runtime -t localhost/kubeless/go:0.1.0 .
#   docker build -f runtimes/dockerfiles/go.Dockerfile --target compile -t localhost/kubeless/go-compile:0.1.0 .
FROM debian:bookworm-slim AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends busybox ca-certificates \
 && rm -rf /var/lib/apt/lists/* && useradd --uid 1000 --home-dir /tmp kubeless
USER 1000
WORKDIR /kubeless
CMD ["/kubeless/server"]

FROM golang:1.26-bookworm AS toolchain

FROM runtime AS compile
USER 0
COPY --from=toolchain /usr/local/go /usr/local/go
COPY runtimes/go/kubeless /usr/local/kubeless/functions
COPY runtimes/go/compile/compile-function.sh /usr/local/kubeless/compile-function.sh
ENV PATH=/usr/local/go/bin:$PATH HOME=/tmp
USER 1000
CMD ["/usr/local/kubeless/compile-function.sh"]
