"""Structured JSON log lines (structlog), one per event, for every process.

Each line carries the component and whatever ids are bound for the work at
hand (payment_id, transaction_id, correlation_id), so `grep pay_…` follows a
payment from ingress through the worker to the sinks. E-mail addresses are
masked in every field; card data never reaches paystream.
"""

from __future__ import annotations

import logging.config
import re

import structlog

_EMAIL = re.compile(r"([A-Za-z0-9])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")


def mask_email(text: str) -> str:
    """'jane.doe@example.com' -> 'j***@example.com'."""
    return _EMAIL.sub(r"\1***@\2", text)


def _mask_emails(_logger, _name, event_dict: dict) -> dict:
    for key, value in event_dict.items():
        if isinstance(value, str) and "@" in value:
            event_dict[key] = mask_email(value)
    return event_dict


_SHARED = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.stdlib.ExtraAdder(),
]


def logging_config(level: str = "INFO") -> dict:
    """A dictConfig that renders every record (ours and the libraries') as masked JSON."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": structlog.stdlib.ProcessorFormatter,
                "foreign_pre_chain": _SHARED,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    _mask_emails,
                    structlog.processors.JSONRenderer(),
                ],
            },
        },
        "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}},
        "root": {"handlers": ["stdout"], "level": level.upper()},
        "loggers": {
            # Per-request and per-poll chatter of the clients.
            "aiokafka": {"level": "WARNING"},
            "kafka": {"level": "WARNING"},
            # The Stripe SDK logs two info lines per provider call (request, response): the worker's own
            # "command handled" line already says what a call did.
            "stripe": {"level": "WARNING"},
        },
    }


def configure(component: str, level: str = "INFO", *, apply: bool = True) -> dict:
    """Set structlog up for `component`; apply the stdlib config unless a framework (Faust) will."""
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(component=component)
    config = logging_config(level)
    if apply:
        logging.config.dictConfig(config)
    return config


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)
