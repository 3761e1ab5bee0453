#!/usr/bin/env bash
# The build tags of the service's binary, comma-separated for `go build
# -tags`: nomsgpack (the API speaks no MessagePack, so Gin leaves its codec
# out), and no<transport> for each optional transport, nats, redis,
# googlecloud and sqs, that TRANSPORTS leaves out. gochannel, sql and amqp
# are always built in. TRANSPORTS unset or empty keeps every transport:
#   scripts/build-tags.sh                         # nomsgpack
#   TRANSPORTS='sql amqp' scripts/build-tags.sh   # nomsgpack,nonats,noredis,nogooglecloud,nosqs
set -euo pipefail

always=(gochannel sql amqp)
optional=(nats redis googlecloud sqs)
read -r -a wanted <<<"${TRANSPORTS:-${always[*]} ${optional[*]}}"
for name in "${wanted[@]}"; do
  if [[ ! " ${always[*]} ${optional[*]} " =~ " $name " ]]; then
    echo "TRANSPORTS: unknown transport \"$name\" (want some of ${always[*]} ${optional[*]})" >&2
    exit 2
  fi
done
tags=nomsgpack
for name in "${optional[@]}"; do
  [[ " ${wanted[*]} " =~ " $name " ]] || tags+=",no$name"
done
echo "$tags"
