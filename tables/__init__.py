"""Faust table definitions for in-flight payments, and the read-side queries analysts use."""
