"""The local development stack: the outside systems on 127.0.0.1 (Kafka, a Couchbase cluster,
Redis, the Stripe sandbox), paystream's processes in the background, the demo and the
benchmarks. Its own distribution (paystream-devstack): a production install of paystream
never contains it, and nothing in paystream imports it."""
