"""Benchmarks: commands that measure paystream on the machine they run on."""
