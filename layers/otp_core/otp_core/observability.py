"""The one logger, metrics and tracer of the service.

Codes, tokens, secrets and full phone numbers never reach any of them: log ``mask_phone`` output only.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
metrics = Metrics()
tracer = Tracer()


def mask_phone(phone_number: str) -> str:
    """Return the last four digits of a number, the only part that may be logged or returned."""
    return phone_number[-4:]
