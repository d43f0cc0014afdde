"""HTTP entrypoint (aiohttp): validates requests and produces payment commands to Kafka."""
