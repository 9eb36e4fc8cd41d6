# syntax=docker/dockerfile:1
# ocpp-security-proxy container image: build with the full toolchain, ship only node + dist + prod deps.
#   docker build -t ghcr.io/ocpp-security-proxy/ocpp-security-proxy:0.1.0 .

# ---- build stage: compile TypeScript, then drop dev dependencies ----
FROM node:20-bookworm-slim AS build
WORKDIR /app
ENV NODE_ENV=development
# jemalloc, preloaded at run time: glibc malloc degrades after thousands of sessions close at once
# (README, "Memory allocator"). Copied by its SONAME so the same line works on amd64 and arm64.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libjemalloc2 \
 && mkdir -p /opt/jemalloc \
 && cp -L "$(dpkg -L libjemalloc2 | grep '/libjemalloc\.so\.2$')" /opt/jemalloc/libjemalloc.so.2 \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# --ignore-scripts: "prepare" would run tsc before the sources are copied.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY proxy ./proxy
COPY policies ./policies
COPY certs ./certs
COPY test ./test
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts \
 && rm -rf dist/test

# ---- runtime stage: distroless, no shell, no package manager, non-root (uid 65532) ----
FROM gcr.io/distroless/nodejs20-debian12:nonroot AS runtime
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build --chown=65532:65532 /app/package.json ./package.json
COPY --from=build --chown=65532:65532 /app/node_modules ./node_modules
COPY --from=build --chown=65532:65532 /app/dist ./dist
# Same Debian 12 glibc as the build stage, so the library from there loads here.
COPY --from=build /opt/jemalloc/libjemalloc.so.2 /usr/lib/libjemalloc.so.2
# Background threads purge freed pages on a timer (after 1 s); without them jemalloc purges only when
# an arena allocates again, and RSS crept under reconnect churn (README, "Memory allocator").
ENV LD_PRELOAD=/usr/lib/libjemalloc.so.2 \
    MALLOC_CONF=background_thread:true,dirty_decay_ms:1000
USER 65532:65532
# charger TLS, optional Profile 1 plain, admin (/metrics /healthz /readyz)
EXPOSE 8443 8080 9100
# The distroless entrypoint is node itself; the chart passes "serve --config ...".
ENTRYPOINT ["/nodejs/bin/node", "/app/dist/proxy/cli.js"]
CMD ["serve"]
