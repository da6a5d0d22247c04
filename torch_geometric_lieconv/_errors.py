"""Helpers for one-line error messages."""
from __future__ import annotations


def first_line(error: BaseException) -> str:
    """The first non-empty line of an exception's message, or its type's name when it has none."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
