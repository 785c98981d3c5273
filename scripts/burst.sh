#!/usr/bin/env bash
# make burst: the launcher drains a burst of S3 events from SQS (as Lambda's event source
# mapping would) through the ECS-faithful fault proxy, against moto, in a release build.
#
# Two scenarios (tests/burst.rs):
# - uncapped (default): no ledger, no cap; every object launched exactly once, as fast as
#   ECS's throttles allow.
# - at the cap (BURST_MAX_RUNNING=M set): the job has max_running = M, the run ledger and
#   [launcher] queue_url = the burst queue itself; events that find no slot are put back in
#   line (re-sent with a delay, acknowledged). Each task "runs" BURST_TASK_SECONDS real seconds
#   (default here 3, standing for a 5-minute task: time scaled 100x; the launcher's
#   wait_seconds is 1), then the test stops it in moto and hands its STOPPED event to the
#   tracker, which frees the slot. E.g.  BURST_MAX_RUNNING=50 make burst
#
# Tunables (environment): BURST_EVENTS (default 10000), BURST_POLLERS, BURST_SEED,
# BURST_FAULT_RATE, BURST_MAX_RECEIVE_COUNT, BURST_VISIBILITY_TIMEOUT; at the cap also
# BURST_MAX_RUNNING, BURST_TASK_SECONDS, BURST_WAIT_SECONDS, BURST_BACKLOG; JOBS (cargo build
# jobs, default 2).
# The last line printed is the summary:
#   events=N launched=L duplicates=D lost=X dlq=Q seconds=S launch_rate=R/s limit=20/s
# and at the cap also  max_running_seen=K dlq_good=G  (K never above M, G = 0).
set -euo pipefail
cd "$(dirname "$0")/.."

export BURST_EVENTS="${BURST_EVENTS:-10000}"
# The launch rate the uncapped burst must reach: half of ECS's sustained 20 launches/s.
export BURST_MIN_RATE="${BURST_MIN_RATE:-10}"
if [[ -n "${BURST_MAX_RUNNING:-}" ]]; then
  export BURST_TASK_SECONDS="${BURST_TASK_SECONDS:-3}"
  scenario=at_the_cap_every_object_waits_its_turn_and_none_is_dead_lettered
else
  scenario=a_burst_launches_every_object_exactly_once
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

status=0
cargo test --release -j"${JOBS:-2}" -p jobrunner-integration-tests --test burst -- --exact "$scenario" --nocapture 2>&1 | tee "$log" || status=$?
summary="$(grep -E '^events=' "$log" | tail -n 1 || true)"
echo "${summary:-events=${BURST_EVENTS}: no summary line (the run failed before the end, see above)}"
exit "$status"
