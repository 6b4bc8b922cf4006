# The python3.11 runtime and its install image, for users who build images with Docker (e.g. to load into kind).
# Build from the repository root:
#   docker build -f runtimes/dockerfiles/python.Dockerfile --target runtime -t localhost/kubeless/python:0.1.0 .
#   docker build -f runtimes/dockerfiles/python.Dockerfile --target deps    -t localhost/kubeless/python-deps:0.1.0 .
FROM debian:bookworm-slim AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends python3.11 busybox ca-certificates \
 && ln -sf python3.11 /usr/bin/python3 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 1000 --home-dir /tmp kubeless
COPY runtimes/python/kubeless_runtime.py /kubeless_runtime.py
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER 1000
WORKDIR /kubeless
CMD ["/usr/bin/python3.11", "/kubeless_runtime.py"]

FROM runtime AS deps
USER 0
RUN apt-get update && apt-get install -y --no-install-recommends python3-pip && rm -rf /var/lib/apt/lists/*
USER 1000
CMD ["/bin/sh"]
