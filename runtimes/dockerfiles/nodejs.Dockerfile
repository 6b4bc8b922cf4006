# The nodejs18 runtime and its install image (npm). Build from the repository root:
#   docker build -f runtimes/dockerfiles/nodejs.Dockerfile --target runtime -t localhost/kubeless/nodejs:0.1.0 .
#   docker build -f runtimes/dockerfiles/nodejs.Dockerfile --target deps    -t localhost/kubeless/nodejs-deps:0.1.0 .
FROM debian:bookworm-slim AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends nodejs busybox ca-certificates \
 && rm -rf /var/lib/apt/lists/* && useradd --uid 1000 --home-dir /tmp kubeless
COPY runtimes/nodejs/kubeless.js /usr/lib/kubeless-nodejs/kubeless.js
COPY runtimes/nodejs/lib /usr/lib/kubeless-nodejs/lib
RUN ln -s usr/lib/kubeless-nodejs/kubeless.js /kubeless.js
ENV NODE_ENV=production
USER 1000
WORKDIR /kubeless
CMD ["/usr/bin/node", "--no-force-async-hooks-checks", "/kubeless.js"]

FROM runtime AS deps
USER 0
RUN apt-get update && apt-get install -y --no-install-recommends npm && rm -rf /var/lib/apt/lists/*
COPY runtimes/nodejs/deps/npm-install.sh /usr/local/bin/kubeless-npm-install
USER 1000
CMD ["/bin/sh"]
