"""RFC 3339 UTC timestamps, as the contract writes them (``2026-11-21T22:10:00Z``)."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
