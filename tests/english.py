"""What an English page must not show: Japanese, outside what is marked as Japanese.

A page in English may hold Japanese only inside an element marked
``lang="ja"`` (the 「日本語」 link, a customer's name in kanji: WCAG 3.1.2).
Everything else a customer sees or hears counts: text, the title, and the
attributes a browser or screen reader shows (alt, title, aria-label,
placeholder, a button's value, and data-label, which the phone layout shows).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Kana, kanji, CJK punctuation (「」、。) and full-width forms (（）～).
JAPANESE = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff01-\uff9f]")
SHOWN_ATTRIBUTES = {"alt", "title", "aria-label", "placeholder", "data-label"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []  # (tag, hidden: Japanese-marked, script or style)
        self.found: list[str] = []

    def _hidden(self) -> bool:
        return bool(self.stack) and self.stack[-1][1]

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        hidden = self._hidden() or tag in ("script", "style") or (attrs.get("lang") or "").startswith("ja")
        if not hidden:
            shown = [v for k, v in attrs.items() if k in SHOWN_ATTRIBUTES and v]
            if tag == "input" and attrs.get("type") in ("submit", "button", "reset") and attrs.get("value"):
                shown.append(attrs["value"])
            self.found += [f"<{tag}> {value}" for value in shown if JAPANESE.search(value)]
        if tag not in VOID:
            self.stack.append((tag, hidden))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data):
        if not self._hidden() and JAPANESE.search(data):
            self.found.append(data.strip())


def japanese_in(html: str) -> list[str]:
    """The Japanese an English page shows (nothing, when it is right)."""
    reader = _Reader()
    reader.feed(html)
    reader.close()
    return reader.found


def japanese_in_text(text: str, *allowed: str) -> list[str]:
    """Lines of a plain-text mail that hold Japanese, once ``allowed`` (the
    customer's name) is taken out."""
    for word in allowed:
        text = text.replace(word, "")
    return [line for line in text.splitlines() if JAPANESE.search(line)]
