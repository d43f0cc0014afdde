"""Values tuned once by a benchmark: named constants, not settings.

A setting is what differs between deployments (addresses, secrets, sizes a
deployment chooses). These were measured on the benchmark named beside each and
hold for any deployment; change one by running that benchmark again and citing
the new run here (docs/benchmarks.md has the commands, BENCHMARKS.md the figures).
"""

# Kafka producers, per hop (commit e9244b1; BENCHMARKS.md "Payments: start + post, with the sandbox as
# provider", `paystream dev bench payments`): no linger, since records written while a send is in flight
# join the next batch anyway and a reply waits for its flush; a batch per partition large enough that a
# burst of events never splits into many requests.
KAFKA_COMMAND_LINGER_MS = 0  # the ingress's producer (commands)
KAFKA_STREAM_LINGER_MS = 0  # the worker's, sinks' and analytics' producer (replies, events, receipts, changelog)
KAFKA_MAX_BATCH_BYTES = 256 * 1024

# Connections one process keeps open to the provider: calls in flight at once. At 300 payments/s and
# 500 ms a call, 150 are in flight (BENCHMARKS.md targets table, row "payments vs the latency stand-in",
# `paystream dev bench standin`; commit e9244b1).
STRIPE_MAX_CONNECTIONS = 512

# Listen queue of the HTTP servers (ingress, monitor, the benchmarks' floor server): aiohttp's default
# of 128 overflowed when hundreds of clients connected at once, and each dropped SYN costs ≥ 1 s.
# With 4096: 0 listen-queue overflows and 0 SYN retransmits in every mixed and stand-in step
# (BENCHMARKS.md targets table, `paystream dev bench mixed` / `standin`; commit 3b329fe).
LISTEN_BACKLOG = 4096

# Rate limits in leases (connectors/rate_limits.py; commit 5e513cd): the most of a key's limit one
# ingress process leases from Redis at once (under 2 tokens every request is counted in Redis), the cap
# on one lease, and the share of the limit's period a leased token may be spent in. Measured with
# `python -m devstack.bench.hit_cost --rate 300 --seconds 10` (docs/benchmarks.md): a cache hit cost
# 983–1,030 µs of ingress CPU before leases, 687–760 µs after.
RATE_LIMIT_LEASE_FRACTION = 0.05
RATE_LIMIT_LEASE_MAX = 50
RATE_LIMIT_LEASE_LIFE = 0.1

# Records per batch when `paystream store rebuild` replays the topics into the stores: 7,215 documents/s
# (BENCHMARKS.md "Store rebuild from the topics", `python -m devstack.bench.rebuild --payments 100000`,
# commit 10618b8).
REBUILD_BATCH = 2000
