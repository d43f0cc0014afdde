"""paystream: payment processing on Kafka and Faust.

The core package holds what every entrypoint shares: the settings object,
the CLI, and the local service stack.
"""

__version__ = "0.1.0"
