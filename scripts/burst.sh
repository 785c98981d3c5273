#!/usr/bin/env bash
# make burst: the launcher drains a burst of S3 events from SQS (as Lambda's event source
# mapping would) through the ECS-faithful fault proxy, against moto, in a release build.
# Tunables (environment): BURST_EVENTS (default 10000), BURST_POLLERS, BURST_SEED,
# BURST_FAULT_RATE, BURST_MAX_RECEIVE_COUNT, JOBS (cargo build jobs, default 2).
# The last line printed is the summary:
#   events=N launched=L duplicates=D lost=X dlq=Q seconds=S launch_rate=R/s limit=20/s
set -euo pipefail
cd "$(dirname "$0")/.."

export BURST_EVENTS="${BURST_EVENTS:-10000}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

status=0
cargo test --release -j"${JOBS:-2}" -p jobrunner-integration-tests --test burst -- --nocapture 2>&1 | tee "$log" || status=$?
summary="$(grep -E '^events=' "$log" | tail -n 1 || true)"
echo "${summary:-events=${BURST_EVENTS}: no summary line (the run failed before the end, see above)}"
exit "$status"
