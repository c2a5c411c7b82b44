"""Text that arrives as JSON and is stored or shown later (client metadata,
the claims parameter): JSON's escapes can carry what no page or column of
ours can hold."""

from __future__ import annotations


def unstorable(value) -> bool:
    """Whether a parsed JSON value holds a string that cannot be stored or
    shown: U+0000 (PostgreSQL refuses it), or a lone surrogate ("\\ud800"),
    which is not UTF-8 and fails every page that renders it. Walked without
    recursion: the value may be nested as deep as the parser allowed."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item or not _utf8(item):
                return True
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
    return False


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
