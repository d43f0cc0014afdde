"""The benchmarks' own fixed parameters: named constants, each citing the run that set it."""

# Kept-alive connections the payments load generator holds at most (a request past them waits for one,
# and its latency counts from when it was due): with it, 0 listen-queue overflows and 0 SYN retransmits
# in every mixed and stand-in step (BENCHMARKS.md targets table, `paystream dev bench all` on 30dd67b).
CLIENT_CONNECTIONS = 1024

# Payments through a fresh benchmark stack before a full run's suite measures: without them a new Kafka's
# JIT compiler took more CPU than its requests in the first minute (5.9 s against 3.6 s over 17 s at
# 25/s); warmed, Kafka takes 24 % of a core at 50/s (BENCHMARKS.md, closing notes; commit 6cd7919,
# `paystream dev bench payments`).
WARM_UP_S = 30.0
WARM_UP_RATE = 10  # payments per second
