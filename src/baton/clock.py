"""The one clock: every timestamp Baton writes is UTC ISO-8601 with milliseconds and `Z`."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> str:
    return format_utc(datetime.now(UTC))


def format_utc(moment: datetime) -> str:
    # Not strftime: its %Y drops the leading zeros of years before 1000 on glibc ("999-01-01"), which then
    # sort after every real timestamp.
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
