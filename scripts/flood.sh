#!/usr/bin/env bash
# Measures the registration limit under a flood: runs the built service
# with its default limit on a SQLite file of its own (FLOOD_DATABASE_URL to
# use another database), then cmd/loadgen -flood against it: a reader's GET
# latency alone, then while one client (127.0.0.2) floods POST /users over
# hundreds of connections and another (127.0.0.3) registers a few users.
# Extra arguments go to loadgen (e.g. -flood-rate 4000 -flood-conns 500).
# Everything stays on 127.0.0.0/8.
set -euo pipefail
cd "$(dirname "$0")/.."

addr=127.0.0.1:18082
# make build's binary, every transport built in.
tags=$(TRANSPORTS= scripts/build-tags.sh)
CGO_ENABLED=0 go build -tags "$tags" -ldflags='-s -w' -o bin/onboard ./cmd/app
go build -o bin/loadgen ./cmd/loadgen

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# The default limit. The clients are told apart by their source addresses,
# or, with -clients xff, by X-Forwarded-For from a trusted 127.0.0.1.
proxies=
case " $* " in *" xff "* | *"=xff "*) proxies=127.0.0.1 ;; esac
env -u RATE_LIMIT_PASSWORDS -u HASH_QUEUE_MAX -u SMTP_URL TRUSTED_PROXIES=$proxies \
  PUBSUB=sql DATABASE_URL="${FLOOD_DATABASE_URL:-sqlite:$dir/onboard.db}" HTTP_ADDR=$addr \
  bin/onboard >bin/flood-service.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do curl -fs "http://$addr/readyz" >/dev/null && break; sleep 0.1; done

bin/loadgen -flood -url "http://$addr" -pid $pid -json bin/flood.json "$@"
kill $pid && wait $pid || true
