# The app's image: built in three stages so that neither the compiler, nor the dev dependencies, nor the
# sources end up in what runs. test/deploy/dockerfile.test.ts checks this file; the runtime stage's
# steps are run natively by test/deploy/runtime-stage.test.ts.
#
#   docker build -t express-hardened-starter .        (docker compose builds it for you)

# Every stage starts from the same base: Node 24 on Debian (glibc) slim, pinned to an exact release.
# Debian rather than Alpine: @node-rs/argon2 ships separate glibc and musl binaries, and the test suite
# (run on Debian) proves the glibc one. To make the pin immutable, add the multi-arch index digest:
#   docker buildx imagetools inspect node:24.21.0-trixie-slim      (the "Digest:" line)
#   ARG NODE_IMAGE=node:24.21.0-trixie-slim@sha256:<that digest>
# and let Renovate or Dependabot bump tag and digest together. Upgrading: docs/deploy.md.
ARG NODE_IMAGE=node:24.21.0-trixie-slim

# --- install: every dependency, dev ones included (the compiler) ------------------------------------
FROM ${NODE_IMAGE} AS install
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no dependency runs code at install (docs/decisions/0004).
# Behind a TLS-intercepting proxy (common in companies) npm refuses the registry's certificate: give the
# proxy's CA as the optional build secret `build_ca` (docs/deploy.md, "Building behind a proxy"). A
# secret mount leaves no trace in the image or its history, and without one nothing changes.
RUN --mount=type=secret,id=build_ca,required=false \
    if [ -s /run/secrets/build_ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/build_ca; fi \
 && npm ci --ignore-scripts --no-audit --no-fund

# --- build: TypeScript to dist/, with the templates and the stylesheet -----------------------------
FROM install AS build
COPY tsconfig.json tsconfig.build.json ./
COPY config ./config
COPY scripts ./scripts
COPY src ./src
RUN npm run build

# --- runtime: production dependencies, the build and the migrations; nothing else -------------------
FROM ${NODE_IMAGE} AS runtime
# HOST: the app's default (127.0.0.1) is unreachable from outside a container; here the network
# boundary is the container's, and only the proxy can reach it (docker-compose.yml).
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000
WORKDIR /app
COPY package.json package-lock.json ./
# Exactly the lockfile's production tree; the cache is removed in the same layer, so it is not shipped.
RUN --mount=type=secret,id=build_ca,required=false \
    if [ -s /run/secrets/build_ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/build_ca; fi \
 && npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY migrations ./migrations
COPY --from=build /app/dist ./dist
# Everything above belongs to root and is read-only for the app's user: the image's own `node` user,
# never root, so a compromised process cannot change its own code.
USER node
EXPOSE 3000
# Liveness without extra tools in the image (no curl, no wget): Node's fetch with a deadline.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1))"]
# Exec form: node is the process that receives SIGTERM and shuts down gracefully (src/main.ts).
# --max-semi-space-size: V8 sizes its young generation from the memory limit, and under the 512 MB of
# docker-compose.yml it picks 1 MB semi-spaces: a request's short-lived objects then fill it every few
# dozen requests, and the server spends several times longer in minor collections. 16 MB is what V8
# picks itself when memory is plentiful; it costs at most ~48 MB and the heap limit still follows the
# container's (docs/decisions/0014-...). `npm start` passes the same flag.
CMD ["node", "--max-semi-space-size=16", "dist/src/main.js"]
