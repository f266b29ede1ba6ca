"""Single CSV cells: exported so no spreadsheet runs a formula, read back exactly; dates read.

Used by ``digest subscribers export`` (cli_subscribers.py) and import (csvimport.py).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

# A cell a spreadsheet would run as a formula starts with one of these.
# export_cell puts an apostrophe before such a value, and before one that
# already starts with apostrophes then one of these, so import_cell can take
# exactly one off again: the round trip through `export` and `import` is exact.
_FORMULA = re.compile(r"'*[=+\-@\t\r]")
_NEUTRALISED = re.compile(r"'+[=+\-@\t\r]")


def export_cell(value: object) -> object:
    """``value`` as a CSV cell no spreadsheet runs as a formula."""
    if isinstance(value, str) and _FORMULA.match(value):
        return "'" + value
    return value


def import_cell(value: str) -> str:
    """The original text of a cell written by :func:`export_cell`."""
    return value[1:] if _NEUTRALISED.match(value) else value


# listmonk writes Go's time.String(): "2020-07-01 12:44:19.869489 +0000 +0000"
# or "... +0000 UTC"; others write ISO 8601, often with a "Z" or " UTC".
_GO_TIME = re.compile(r"^(\S+ \S+) ([+-]\d{4})(?: (?:[+-]\d{4}|[A-Z]{2,5}))?$")


def parse_date(value: str) -> datetime | None:
    """A date from an export as an aware UTC datetime; None when it cannot be read."""
    text = value.strip()
    if text.endswith((" UTC", " GMT")):
        text = text[:-4].strip()
    match = _GO_TIME.match(text)
    if match:
        text = match.group(1) + match.group(2)
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)  # nanoseconds: Python reads microseconds
    try:
        moment = datetime.fromisoformat(text.replace(" ", "T", 1) if match else text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # exports write UTC without saying so
    return moment.astimezone(UTC).replace(microsecond=0)
