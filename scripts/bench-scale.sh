#!/usr/bin/env bash
# The service at a million stored users beside an empty database, on
# PostgreSQL (BENCH_POSTGRES_URL, a server URL) and PUBSUB=sql (or
# BENCH_SCALE_PUBSUB, with its broker's BENCH_* URL as in bench-load.sh):
# `loadgen seed` writes BENCH_SCALE_USERS users (1,000,000; about three
# minutes) into a database of their own, kept for the next run
# (onboard_scale_<N>_users; drop it by hand). Then, alternating, the service
# on an empty database and on the stored users, BENCH_SCALE_ROUNDS times
# (2): the time from its start to ready, the closed loop at the maximum
# rate, the open loop at half of it for 30 s with GET /users/{id} timed
# every 20 ms, and its peak RSS. A table then shows the stored users'
# figures beside the empty database's, pooled over the rounds (the p99s of
# every sample: a 15-s run's p99 of a few milliseconds is its third
# slowest email, too few to compare within 10 %), with the targets. The
# service is built as `make build TRANSPORTS=<its transport>` builds it,
# with no other broker's client (BENCH_SCALE_TRANSPORTS names others;
# empty: every one).
set -euo pipefail
cd "$(dirname "$0")/.."

pg=${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
pubsub=${BENCH_SCALE_PUBSUB:-sql}
users=${BENCH_SCALE_USERS:-1000000}
rounds=${BENCH_SCALE_ROUNDS:-2}
count=${BENCH_REGISTRATIONS:-300}
addr=127.0.0.1:18080
smtp=127.0.0.1:2525
# The stored users' keys are wrapped under this key, the same at every run:
# a benchmark's, never a deployment's.
master_key=$(printf 'onboard-bench-scale-master-key!!' | base64)

transports=${BENCH_SCALE_TRANSPORTS-$pubsub}
echo "== the service built with TRANSPORTS='$transports'"
tags=$(TRANSPORTS=$transports scripts/build-tags.sh)
CGO_ENABLED=0 go build -tags "$tags" -ldflags='-s -w' -o bin/onboard ./cmd/app
go build -o bin/loadgen ./cmd/loadgen

database_url() { sed -E "s#(://[^/]+)/[^?]*#\1/$1#" <<<"$pg"; }

stored="onboard_scale_${users}_users"
if [[ -z $(psql "$pg" -Atc "SELECT 1 FROM pg_database WHERE datname = '$stored'") ]]; then
  psql "$pg" -qc "CREATE DATABASE $stored"
  echo "== seeding $users users into $stored"
  if ! DATABASE_URL=$(database_url "$stored") MASTER_KEY=$master_key bin/loadgen seed -users "$users"; then
    psql "$pg" -qc "DROP DATABASE $stored"
    exit 1
  fi
  psql "$(database_url "$stored")" -qc "VACUUM ANALYZE"
fi

rm -f bin/bench-scale-*.json
pid=
trap 'kill $pid 2>/dev/null || true' EXIT
# run LABEL DATABASE: start the service on DATABASE, time it to ready, and
# measure it.
run() {
  local label=$1 database=$2
  local started ready_ms
  started=$(date +%s%N)
  MASTER_KEY=$master_key PUBSUB=$pubsub PUBSUB_NAMESPACE=onboardscale DATABASE_URL=$(database_url "$database") \
    AMQP_URL=${BENCH_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/} NATS_URL=${BENCH_NATS_URL:-nats://127.0.0.1:4222} \
    REDIS_URL=${BENCH_REDIS_URL:-redis://127.0.0.1:6379/0} SMTP_URL=smtp://$smtp HTTP_ADDR=$addr \
    RATE_LIMIT_PASSWORDS=off bin/onboard >"bin/bench-scale-$label.log" 2>&1 &
  pid=$!
  until curl -fs "http://$addr/readyz" >/dev/null; do
    kill -0 $pid 2>/dev/null || { echo "the service on $database exited: bin/bench-scale-$label.log" >&2; exit 1; }
    sleep 0.02
  done
  ready_ms=$(( ($(date +%s%N) - started) / 1000000 ))
  echo "== $label ($database): ready after $ready_ms ms; closed loop, maximum rate"
  bin/loadgen -url "http://$addr" -smtp-listen $smtp -c 4 -n "$count" -pid $pid -ready-ms "$ready_ms" -samples \
    -json "bin/bench-scale-$label-max.json"
  max=$(sed -nE 's/.*"RegistrationsPerS": ([0-9.]+).*/\1/p' "bin/bench-scale-$label-max.json")
  half=$(awk -v m="$max" 'BEGIN { printf "%.1f", m / 2 }')
  echo "== $label: open loop at half the maximum rate ($half/s), GET /users/{id} every 20 ms"
  bin/loadgen -url "http://$addr" -smtp-listen $smtp -rate "$half" -duration 30s -pid $pid -ready-ms "$ready_ms" \
    -reads-every 20ms -samples -json "bin/bench-scale-$label-half.json"
  kill $pid && wait $pid || true
}

for round in $(seq 1 "$rounds"); do
  empty="onboard_scale_empty_$(date +%s)"
  psql "$pg" -qc "CREATE DATABASE $empty"
  run "empty-$round" "$empty"
  psql "$pg" -qc "DROP DATABASE $empty"
  run "stored-$round" "$stored"
done

echo "== $users stored users beside an empty database; $0"
bin/loadgen -scale-summary "empty stored"
