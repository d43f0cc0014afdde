"""Adapters to the outside systems: Kafka admin, the card-payment provider,
Couchbase and Redis. Entrypoints hand results to these; the core imports none."""
