#!/usr/bin/env bash
# Builds the 3-node cluster and the `payments` bucket for docker/compose.yaml.
# Runs on every `docker compose up`, so each step first checks whether it has
# already been done and the script succeeds against an existing cluster.
set -euo pipefail

USERNAME="${COUCHBASE_USERNAME:-Administrator}"
PASSWORD="${COUCHBASE_PASSWORD:-password}"
BUCKET="${COUCHBASE_BUCKET:-payments}"
WAIT_TIMEOUT_S="${WAIT_TIMEOUT_S:-180}"
AUTO_FAILOVER_TIMEOUT_S="${AUTO_FAILOVER_TIMEOUT_S:-30}"
MASTER=couchbase1
OTHERS=(couchbase2 couchbase3)
# The community edition wants the same services on every node.
SERVICES=data,index,query

log() { echo "init-cluster: $*" >&2; }

cli() {
  couchbase-cli "$1" -c "$MASTER:8091" -u "$USERNAME" -p "$PASSWORD" "${@:2}"
}

# curl ships in /opt/couchbase/bin inside the image (wget is the only other
# HTTP client there). Without -f any HTTP status counts as "answering".
wait_for_rest() {
  local host=$1 deadline=$((SECONDS + WAIT_TIMEOUT_S))
  until curl -s -o /dev/null --max-time 5 "http://$host:8091/ui/index.html"; do
    if ((SECONDS >= deadline)); then
      log "$host:8091 did not answer within ${WAIT_TIMEOUT_S}s"
      exit 1
    fi
    sleep 2
  done
  log "$host:8091 is up"
}

# 404 until cluster-init has run; 401 would mean a different password, which
# the cluster-init below then reports instead of silently re-initialising.
cluster_initialised() {
  curl -fs -o /dev/null -u "$USERNAME:$PASSWORD" "http://$MASTER:8091/pools/default"
}

for host in "$MASTER" "${OTHERS[@]}"; do
  wait_for_rest "$host"
done

if cluster_initialised; then
  log "cluster already initialised on $MASTER"
else
  # Name the node by its compose hostname; otherwise it registers as
  # 127.0.0.1, which the other nodes cannot reach.
  cli node-init --node-init-hostname "$MASTER"
  cli cluster-init \
    --cluster-username "$USERNAME" \
    --cluster-password "$PASSWORD" \
    --cluster-name paystream \
    --services "$SERVICES" \
    --cluster-ramsize 512 \
    --cluster-index-ramsize 256 \
    --index-storage-setting default
fi

# Outputs are captured before grep so that grep -q closing the pipe early
# cannot fail the producer under pipefail.
members=$(cli server-list)
for host in "${OTHERS[@]}"; do
  if grep -qF "$host:8091" <<<"$members"; then
    log "$host already in the cluster"
  else
    cli server-add \
      --server-add "http://$host:8091" \
      --server-add-username "$USERNAME" \
      --server-add-password "$PASSWORD" \
      --services "$SERVICES"
  fi
done

# Nodes added by an earlier, interrupted run still show as inactiveAdded.
members=$(cli server-list)
pool=$(curl -fsS -u "$USERNAME:$PASSWORD" "http://$MASTER:8091/pools/default")
if grep -q inactiveAdded <<<"$members" ||
  grep -Eq '"balanced": *false' <<<"$pool"; then
  cli rebalance --no-progress-bar
else
  log "cluster already balanced"
fi

if curl -fs -o /dev/null -u "$USERNAME:$PASSWORD" \
  "http://$MASTER:8091/pools/default/buckets/$BUCKET"; then
  log "bucket $BUCKET already exists"
else
  # Two replicas: every document survives the loss of any two of the 3 nodes.
  cli bucket-create \
    --bucket "$BUCKET" \
    --bucket-type couchbase \
    --bucket-ramsize 256 \
    --bucket-replica 2 \
    --wait
fi

# Replica promotion without an operator: a node unresponsive for AUTO_FAILOVER_TIMEOUT_S
# (5 s at least) is failed over by the cluster manager, the replicas of its vbuckets become
# active and the SDKs follow the new map. Community Edition fails over one node, then waits
# for an administrator to add it back (recovery + rebalance) before it does so again.
# Setting it again on each run is harmless.
cli setting-autofailover --enable-auto-failover 1 --auto-failover-timeout "$AUTO_FAILOVER_TIMEOUT_S"

log "cluster ready: bucket $BUCKET on $MASTER, ${OTHERS[*]}; auto-failover after ${AUTO_FAILOVER_TIMEOUT_S}s"
