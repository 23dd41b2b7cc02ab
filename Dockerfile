# dspy-nest-api: three stages. `deps` installs exactly the lock (native better-sqlite3 compiles here), `build`
# compiles TypeScript and prunes to production dependencies, and the runtime stage holds only Node, tini and the
# pruned result: no compiler, no npm at run time, a numeric non-root user.
#
#   docker build -t dspy-nest-api:0.1.0 .
#   docker run --rm -p 8000:8000 -e OPENAI_API_KEY=sk-... dspy-nest-api:0.1.0
#
# scripts/build-like-image.sh runs these same steps without Docker (CI has no engine); keep the two in step.

# Node 20 LTS, pinned to an exact release (bump both FROM lines together).
FROM node:20.20.2-bookworm-slim AS deps
WORKDIR /app
# A C++ toolchain for better-sqlite3 when no prebuilt binary matches the platform.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM deps AS build
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# typescript survives the prune as node-llama-cpp's optional peer (types only, unused at run time): drop it.
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && rm -rf node_modules/typescript

FROM node:20.20.2-bookworm-slim AS runtime
# tini is PID 1: it forwards SIGTERM to Node (which drains) and reaps zombies.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8000 \
    CACHE_DIR=/app/.cache/dspy
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY scripts/healthcheck.js ./scripts/healthcheck.js
# optimized_state.json is optional: the [n] pattern matches nothing when the file is absent and package.json keeps
# the source list non-empty, so the build passes either way. Set PROGRAM_STATE_PATH=/app/optimized_state.json
# to serve it.
COPY package.json optimized_state.jso[n] ./
# The only writable paths: the disk cache and local models (volumes). Everything else stays root-owned.
RUN mkdir -p /app/.cache/dspy /app/models \
 && chown -R 1000:1000 /app/.cache /app/models
VOLUME ["/app/.cache", "/app/models"]
# The base image's `node` user, by number so Kubernetes can verify runAsNonRoot.
USER 1000:1000
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "scripts/healthcheck.js"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/main.js"]
