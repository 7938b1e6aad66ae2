"""Quartz cron expressions, as Databricks schedules use them, evaluated with ``croniter``.

Quartz has 6 or 7 fields: ``second minute hour day-of-month month day-of-week [year]``, ``?``
for "no specific value", and day-of-week numbered 1-7 from Sunday. croniter takes the seconds
first with ``second_at_beginning=True`` and numbers day-of-week 0-6 from Sunday, so numeric
day-of-week values are shifted by one.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lakebox.errors import InvalidInput

__all__ = ["QuartzCron"]

_NUMBER = re.compile(r"\d+")
_EXAMPLE = "'0 0 6 * * ?' (every day at 06:00) or '*/10 * * * * ?' (every 10 seconds)"


def _shift_dow(field: str) -> str:
    """Quartz day-of-week 1-7 (Sunday=1) → cron 0-6 (Sunday=0); names pass through."""

    def shift(match: re.Match[str]) -> str:
        value = int(match.group(0))
        if not 1 <= value <= 7:
            raise ValueError(f"day-of-week {value} is outside Quartz's 1-7 (1 = Sunday)")
        return str(value - 1)

    if "#" in field:  # n#k: the k-th weekday n of the month; only n is a weekday number
        day, nth = field.split("#", 1)
        return re.sub(_NUMBER, shift, day) + "#" + nth
    if "/" in field:
        start, step = field.split("/", 1)
        return re.sub(_NUMBER, shift, start) + "/" + step
    return re.sub(_NUMBER, shift, field)


class QuartzCron:
    """A Quartz cron expression in a time zone.

    Args:
        expression: 6 or 7 Quartz fields, e.g. ``"0 0 6 * * ?"``.
        timezone_id: an IANA time zone such as ``"Europe/Paris"``; default ``"UTC"``.

    Raises:
        InvalidInput: the expression or the time zone is not valid.

    Example:
        >>> cron = QuartzCron("0 30 6 ? * MON-FRI", "UTC")
        >>> cron.next_after(datetime(2026, 1, 2, 7, 0, tzinfo=timezone.utc)).isoformat()
        '2026-01-05T06:30:00+00:00'
    """

    def __init__(self, expression: str, timezone_id: str | None = "UTC") -> None:
        from croniter import croniter

        self.expression = expression
        self.timezone_id = timezone_id or "UTC"
        try:
            self.tz = ZoneInfo(self.timezone_id)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidInput(
                f"Unknown schedule timezone_id {self.timezone_id!r}; use an IANA "
                "name such as 'UTC' or 'Europe/Paris'."
            ) from None
        fields = str(expression).split()
        if len(fields) not in (6, 7):
            raise InvalidInput(
                f"Bad Quartz cron expression {expression!r}: it has {len(fields)} field(s), "
                "Quartz needs 6 or 7 (second minute hour day-of-month month day-of-week [year]),"
                f" e.g. {_EXAMPLE}."
            )
        fields = ["*" if f == "?" else f for f in fields]
        try:
            fields[5] = _shift_dow(fields[5])
            self._cron = " ".join(fields)
            valid = croniter.is_valid(self._cron, second_at_beginning=True)
        except (ValueError, re.error) as exc:
            raise InvalidInput(
                f"Bad Quartz cron expression {expression!r}: {exc}. Example: {_EXAMPLE}."
            ) from None
        if not valid:
            raise InvalidInput(
                f"Bad Quartz cron expression {expression!r}: croniter cannot "
                f"parse it. Example: {_EXAMPLE}."
            )

    def next_after(self, moment: datetime) -> datetime:
        """The first fire time strictly after ``moment`` (timezone-aware UTC result)."""
        from croniter import croniter

        local = moment.astimezone(self.tz)
        it = croniter(self._cron, local, second_at_beginning=True)
        fire: datetime = it.get_next(datetime)
        return fire.astimezone(timezone.utc)

    def fires_between(self, after: datetime, until: datetime, *, limit: int) -> list[datetime]:
        """Fire times in ``(after, until]``, at most the last ``limit`` of them."""
        from collections import deque

        out: deque[datetime] = deque(maxlen=limit)
        fire = self.next_after(after)
        while fire <= until:
            out.append(fire)
            fire = self.next_after(fire)
        return list(out)
