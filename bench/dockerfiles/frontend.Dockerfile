# The frontend, the Dockerfile way: a hand-written multi-stage build in today's
# optimized style, for the side-by-side benchmark (bench/compare.py).
#
#   deps:    npm ci from the lockfile alone, npm's cache on a cache mount;
#   build:   the sources on top, the production build;
#   runtime: node alone (no npm), dist/ and the server files, non-root, a
#            HEALTHCHECK.
#
# Build context: services/frontend. The host's CA bundle comes in as the secret
# "ca", for npm behind an intercepting TLS proxy; it never reaches a layer.
ARG NODE_IMAGE
ARG RUNTIME_IMAGE

FROM ${NODE_IMAGE} AS deps
WORKDIR /src
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    --mount=type=secret,id=ca \
    NODE_EXTRA_CA_CERTS=/run/secrets/ca npm_config_cafile=/run/secrets/ca \
    npm ci --no-audit --no-fund

FROM deps AS build
COPY . .
RUN npm run build

FROM ${RUNTIME_IMAGE}
WORKDIR /app
COPY --from=build /src/dist dist
COPY server.mjs server-lib.mjs ./
ENV NODE_ENV=production PATH=/nodejs/bin:/usr/local/bin:/usr/bin:/bin
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s \
    CMD ["node", "-e", "fetch('http://127.0.0.1:8080/health').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "server.mjs"]
