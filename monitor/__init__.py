"""The monitor: heartbeats in, component and service health out (/health, /metrics, a status page)."""
