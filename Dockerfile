# ovn-admission's container image.
#   docker build -t registry.example.com/ovn-admission:0.1.0 .
# Then set the image in one line of manifests/base/kustomization.yaml (images:).
#
# scripts/image-rootfs.sh lays out the runtime stage's files the same way from
# this machine's node and npm, and test/image.test.ts runs the service from
# that root filesystem (read-only, as user 65532, no shell): no registry is
# reachable where the project is tested.

ARG NODE_VERSION=20

# Build: every dependency, TypeScript compiled.
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json tsconfig.base.json ./
COPY packages/ovsdb-client/package.json packages/ovsdb-client/
COPY packages/ovsdb-sandbox/package.json packages/ovsdb-sandbox/
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN npx tsc -b

# Production dependencies only, beside the compiled service (no tests, no benchmarks).
FROM node:${NODE_VERSION}-bookworm-slim AS app
WORKDIR /app
COPY package.json package-lock.json ./
COPY --from=build /src/packages/ovsdb-client/package.json packages/ovsdb-client/
COPY --from=build /src/packages/ovsdb-client/dist packages/ovsdb-client/dist
COPY --from=build /src/packages/ovsdb-sandbox/package.json packages/ovsdb-sandbox/
COPY --from=build /src/packages/ovsdb-sandbox/dist packages/ovsdb-sandbox/dist
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund
COPY --from=build /src/dist/bin dist/bin
COPY --from=build /src/dist/cli dist/cli
COPY --from=build /src/dist/service dist/service
COPY --from=build /src/dist/domain dist/domain
COPY --from=build /src/dist/webhooks dist/webhooks
COPY --from=build /src/dist/cluster dist/cluster
COPY --from=build /src/dist/ovn dist/ovn
COPY --from=build /src/dist/tls dist/tls

# Runtime: node and the app, no shell, no package manager. The service calls
# no tool (certificates are made in-process) and stops cleanly on SIGTERM, so
# it runs as PID 1 without an init.
FROM gcr.io/distroless/nodejs20-debian12:nonroot
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="ovn-admission" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/ovn-admission/ovn-admission" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=app /app /app
WORKDIR /app
# Writable only where the Deployment mounts a volume (--certs-dir); the root filesystem may be read-only.
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["/nodejs/bin/node", "/app/dist/bin/ovn-admission.js"]
