"""The one clock: every timestamp Baton writes is UTC ISO-8601 with milliseconds and `Z`."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> str:
    return format_utc(datetime.now(UTC))


def format_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
