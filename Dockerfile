# syntax=docker/dockerfile:1
#
# Cedar ext_authz server for Envoy/Istio.
#   docker build -t cedar-envoy-authz .
#   docker run -p 9191:9191 -p 9192:9192 cedar-envoy-authz            # serve policies/
#   docker run cedar-envoy-authz bundle push policies --version v1 ...  # any CLI command

# ---- build: compile TypeScript to dist/ -------------------------------------
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Install before copying src/ so the dependency layer is cached across code
# changes. --ignore-scripts skips `prepare` (tsc needs src/, which is not here
# yet); the build runs explicitly below. No dependency needs its install script
# to compile (protobufjs's only prints a version warning; esbuild is unused by tsc).
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

# ---- runtime: production dependencies + compiled output ---------------------
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
# The server's own default admin address is 127.0.0.1:9192 (safe on a laptop:
# the admin port has no authentication). In a container, probes, Prometheus and
# `docker run -p` reach it from outside the container's loopback, so the image
# binds all interfaces; restrict who reaches it with the network (compose
# publishes it on the host's loopback only; Kubernetes: see envoy/istio).
ENV AUTHZ_ADMIN=0.0.0.0:9192
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would run tsc, which is a dev dependency.
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
# protos/ is read at runtime (proto-loader, resolved relative to dist/);
# policies/ is the default --policies directory and what `bundle push` uploads.
COPY protos ./protos
COPY policies ./policies
# Last-good bundles are kept under the state dir. Creating it owned by `node`
# means a fresh Docker volume mounted here inherits that ownership.
# (Point AUTHZ_STATE_DIR / --state-dir at it when reading bundles from S3.)
RUN mkdir -p /var/lib/authz && chown node:node /var/lib/authz

# Non-root: uid/gid 1000 from the node image. (Kubernetes runAsNonRoot cannot
# check a user *name*, so the manifests set runAsUser: 1000 explicitly.)
USER node

# 9191 gRPC ext_authz + grpc.health.v1 (h2c); 9192 admin HTTP (/healthz /readyz /metrics /bundle)
EXPOSE 9191 9192

# Liveness only (/healthz): /readyz is 503 until a policy set is active, and a
# container waiting for its first bundle is not broken. Slim images have no curl,
# so Node's fetch does the probe. Assumes the default admin port.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9192/healthz',{signal:AbortSignal.timeout(2000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["serve"]
