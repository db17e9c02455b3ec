"""Times on the wire: RFC 3339 date-times that carry a time zone, nothing else.

A time without a zone (``2030-01-01T00:00:00``) is ambiguous and a bare number (``0.5``) is
not a date-time at all: both are a 422 that says how to write one. So is a time within a day of
either end of the calendar Python and the database keep (``0001-01-01T12:00:00+14:00`` is before
year 1 in UTC): a window a day wide around it cannot be computed or stored.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BeforeValidator

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
EXAMPLE = "2030-01-01T00:00:00Z"
EARLIEST = datetime.min.replace(tzinfo=UTC) + timedelta(days=1)
LATEST = datetime.max.replace(tzinfo=UTC) - timedelta(days=1)


def _rfc3339(value: object) -> object:
    """Let datetimes through (pydantic checks their zone); strings must be RFC 3339 with a
    zone; anything else (numbers) is refused."""
    if isinstance(value, str):
        if not RFC3339.match(value):
            raise ValueError(
                f"{value!r} is not an RFC 3339 date-time with a time zone: write e.g. {EXAMPLE} "
                "or 2030-01-01T02:00:00+02:00"
            )
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ValueError(f"a date-time is text with a time zone such as {EXAMPLE}, not a number")
    return value


def _in_range(value: datetime) -> datetime:
    """Refuse a time within a day of either end of the calendar, in UTC."""
    if not EARLIEST <= value <= LATEST:
        raise ValueError(
            f"{value.isoformat()} is outside the dates Crane takes: from "
            f"{EARLIEST.date().isoformat()} to {LATEST.date().isoformat()} in UTC"
        )
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339), AfterValidator(_in_range)]
"""A date-time with a time zone (``format: date-time`` in the OpenAPI)."""
