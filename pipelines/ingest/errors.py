"""Errors and labels for intake messages: a file, row, field and rule, never a value."""

from __future__ import annotations

import re

_SAFE_HEADER = re.compile(r"^[A-Za-z0-9 _\-/#().]{1,64}$")


# -- public types --------------------------------------------------------------------------------
class FileRejected(Exception):
    """A whole file cannot be used. The message names the file, never a data value."""

    def __init__(self, file: str, reason: str, *, row: int | None = None,
                 field: str | None = None, code: str = "rejected") -> None:
        self.file, self.reason, self.row, self.field, self.code = file, reason, row, field, code
        where = ", ".join(part for part in (f"row {row}" if row is not None else "",
                                            f"field {field}" if field else "") if part)
        super().__init__(f"{file}: {reason}" + (f" ({where})" if where else ""))


def safe_label(name: str) -> str:
    """A column header fit for a message (headers are partner-written, so keep them tame)."""
    return name if _SAFE_HEADER.match(name) else "(unprintable header)"
