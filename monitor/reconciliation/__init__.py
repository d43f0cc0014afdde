"""Reconciliation, in one place: paystream's payments and receipts against the provider's own records.

- differences.py: the four classes of difference, and a run over what changed since a moment (pure, on ports);
- history.py: what paystream recorded, read back from its events and receipts topics (Kafka);
- watch.py: the monitor's run every interval, its metrics and its alerts (`paystream reconcile` runs one).
"""
