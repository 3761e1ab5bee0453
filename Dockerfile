# syntax=docker/dockerfile:1
# onboard's image: the static binary of `make build` on a distroless base,
# with no shell and no compiler, run as the non-root uid 65532.
#   docker build -t onboard .
# Configured by the environment variables of the README; the service listens
# on HTTP_ADDR (default :8080). `docker compose --profile app up -d --wait`
# runs it beside PostgreSQL and RabbitMQ; deploy/ holds Kubernetes manifests.

FROM golang:1.26-bookworm AS build
WORKDIR /src
# The compiler's cache, kept between builds by a BuildKit cache mount below.
ENV GOCACHE=/go/cache
# The modules in a layer of their own: a change to the code alone does not
# download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# make build's command, the output path aside (deploy/dockerfile_test.go
# checks that the two stay the same). .git is not in the build context, so
# `onboard version` names no commit here. TRANSPORTS, as make build's,
# names the transports built in (`--build-arg TRANSPORTS='sql amqp'`),
# every one by default.
ARG TRANSPORTS
RUN --mount=type=cache,target=/go/cache \
    tags=$(scripts/build-tags.sh) && CGO_ENABLED=0 go build -buildvcs=auto -tags "$tags" -ldflags='-s -w' -o /out/onboard ./cmd/app

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/onboard /onboard
USER 65532:65532
EXPOSE 8080
# `onboard healthcheck` GETs /healthz on the loopback address of HTTP_ADDR's
# port and exits 0 on 200, 1 otherwise: the image has no shell or curl.
# Kubernetes ignores it and probes /healthz (liveness) and /readyz
# (readiness) itself: deploy/deployment.yaml.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/onboard", "healthcheck"]
ENTRYPOINT ["/onboard"]
