"""`paystream chaos`: faults injected under load, then reconciled (devstack/chaos/run.py)."""
