"""Logs, metrics and heartbeats shared by every paystream process."""
