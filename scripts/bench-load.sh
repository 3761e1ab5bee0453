#!/usr/bin/env bash
# Drives the built service with cmd/loadgen on PostgreSQL, once per transport:
# closed loop to find the maximum registration rate, then open loop at half
# of it for the effect latencies. Needs PostgreSQL (BENCH_POSTGRES_URL, a
# server URL; a database is created per run), RabbitMQ (BENCH_AMQP_URL), NATS
# with JetStream (BENCH_NATS_URL), Redis (BENCH_REDIS_URL), a Pub/Sub
# emulator (BENCH_PUBSUB_EMULATOR_HOST; cmd/pubsub-emulator) and an SQS
# emulator (BENCH_AWS_ENDPOINT_URL; cmd/sqs-emulator), each emulator started
# here when nothing answers there; BENCH_PUBSUB picks the transports. The
# brokers are used in the namespace onboardbench: nothing else may use it
# meanwhile. cmd/baseline, the tutorial's design on PostgreSQL and RabbitMQ,
# runs first in the same way; a table then shows every figure beside the
# baseline's and beside its target. CPU per 201 sums the service's, the
# database's and the broker's processes (by name, so nothing else should
# run on them meanwhile).
set -euo pipefail
cd "$(dirname "$0")/.."

pg=${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
amqp=${BENCH_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}
nats=${BENCH_NATS_URL:-nats://127.0.0.1:4222}
redis=${BENCH_REDIS_URL:-redis://127.0.0.1:6379/0}
emulator=${BENCH_PUBSUB_EMULATOR_HOST:-127.0.0.1:8085}
sqs=${BENCH_AWS_ENDPOINT_URL:-http://127.0.0.1:4100}
count=${BENCH_REGISTRATIONS:-300}
# At half the rate, about 14 registrations a second: 60 s makes a p99 of
# some 800 effects (their eighth slowest), where 15 s made it the second.
half_for=${BENCH_HALF_RATE_FOR:-60s}
addr=127.0.0.1:18080
metrics_addr=127.0.0.1:19090
smtp=127.0.0.1:2525

# make build's binary, every transport built in.
tags=$(TRANSPORTS= scripts/build-tags.sh)
CGO_ENABLED=0 go build -tags "$tags" -ldflags='-s -w' -o bin/onboard ./cmd/app
go build -o bin/loadgen ./cmd/loadgen
go build -o bin/baseline ./cmd/baseline

pubsubs=${BENCH_PUBSUB:-sql amqp nats redis googlecloud sqs}
emulator_pids=()
trap 'kill "${emulator_pids[@]}" 2>/dev/null || true' EXIT
# start_emulator PUBSUB NAME HOST:PORT: run cmd/NAME there unless PUBSUB is
# not benchmarked or something answers.
start_emulator() {
  local host=${3%:*} port=${3##*:}
  if [[ " $pubsubs " == *" $1 "* ]] && ! timeout 2 bash -c "</dev/tcp/$host/$port" 2>/dev/null; then
    go build -o "bin/$2" "./cmd/$2"
    "bin/$2" -addr "$3" >"bin/bench-$2.log" 2>&1 &
    emulator_pids+=($!)
    for _ in $(seq 1 50); do timeout 1 bash -c "</dev/tcp/$host/$port" 2>/dev/null && break; sleep 0.1; done
  fi
}
start_emulator googlecloud pubsub-emulator "$emulator"
start_emulator sqs sqs-emulator "${sqs#http://}"

# database_url NAME: the server URL with its database replaced by NAME.
database_url() { sed -E "s#(://[^/]+)/[^?]*#\1/$1#" <<<"$pg"; }

# measure LABEL PID PROCESSES METRICS: the closed loop at the maximum rate,
# then the open loop at half of it, of the service PID, counting the CPU of
# PROCESSES, less what its bcrypt took by the service's own count at the
# /metrics URL METRICS.
measure() {
  local label=$1 pid=$2 processes=$3 metrics=$4
  for _ in $(seq 1 100); do curl -fs "http://$addr/readyz" >/dev/null && break; sleep 0.1; done
  echo "== $label on PostgreSQL: closed loop, maximum rate"
  bin/loadgen -url "http://$addr" -smtp-listen $smtp -c 4 -n "$count" -pid "$pid" -cpu-of "$processes" \
    -metrics "$metrics" -json "bin/bench-$label-max.json"
  max=$(sed -nE 's/.*"RegistrationsPerS": ([0-9.]+).*/\1/p' "bin/bench-$label-max.json")
  half=$(awk -v m="$max" 'BEGIN { printf "%.1f", m / 2 }')
  # The points are asked for every 2 ms here, so that their p99 is known
  # to better than its target; the closed loop's 10 ms keep the polls from
  # being the load.
  echo "== $label on PostgreSQL: open loop at half the maximum rate ($half/s)"
  bin/loadgen -url "http://$addr" -smtp-listen $smtp -rate "$half" -duration "$half_for" -pid "$pid" -cpu-of "$processes" \
    -metrics "$metrics" -points-every 2ms -json "bin/bench-$label-half.json"
}

# broker_processes PUBSUB: the process names of PUBSUB's broker.
broker_processes() {
  case $1 in
    amqp) echo beam.smp ;;
    nats) echo nats-server ;;
    redis) echo redis-server ;;
    googlecloud) echo pubsub-emulator ;;
    sqs) echo sqs-emulator ;;
  esac
}

db="onboard_bench_$(date +%s)_baseline"
psql "$pg" -qc "CREATE DATABASE $db"
DATABASE_URL=$(database_url "$db") AMQP_URL=$amqp SMTP_URL=smtp://$smtp HTTP_ADDR=$addr \
  bin/baseline >bin/bench-baseline.log 2>&1 &
pid=$!
trap 'kill $pid "${emulator_pids[@]}" 2>/dev/null || true' EXIT
measure baseline $pid "postgres beam.smp" "http://$addr/metrics"
kill $pid && wait $pid || true
psql "$pg" -qc "DROP DATABASE $db"

for pubsub in $pubsubs; do
  db="onboard_bench_$(date +%s)_$pubsub"
  psql "$pg" -qc "CREATE DATABASE $db"
  # Every registration comes from 127.0.0.1: no registration limit.
  MASTER_KEY=$(head -c 32 /dev/urandom | base64) \
  PUBSUB=$pubsub PUBSUB_NAMESPACE=onboardbench DATABASE_URL=$(database_url "$db") \
    AMQP_URL=$amqp NATS_URL=$nats REDIS_URL=$redis SMTP_URL=smtp://$smtp HTTP_ADDR=$addr METRICS_ADDR=$metrics_addr \
    GOOGLE_CLOUD_PROJECT=onboard-bench PUBSUB_EMULATOR_HOST=$emulator \
    AWS_REGION=us-east-1 AWS_ENDPOINT_URL=$sqs AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench \
    RATE_LIMIT_PASSWORDS=off bin/onboard >"bin/bench-$pubsub.log" 2>&1 &
  pid=$!
  trap 'kill $pid "${emulator_pids[@]}" 2>/dev/null || true' EXIT
  measure "$pubsub" $pid "postgres $(broker_processes "$pubsub")" "http://$metrics_addr/metrics"
  kill $pid && wait $pid || true
  psql "$pg" -qc "DROP DATABASE $db"
done

echo "== every figure beside the baseline's (×) and its target; $0"
bin/loadgen -summary "baseline $pubsubs"
