"""A signed-in device in words: 「Chrome / Windows」 from its User-Agent header.

ua-parser (the maintained port of uap-core) reads the header with the
regexes it ships (ua-parser-builtins: nothing is fetched at run time) and
its Rust matcher (ua-parser-rs). Our parser is built once per process, on
first use, and remembers the last 2,000 headers it read (S3-FIFO,
thread-safe); a header it has not seen costs about 0.1 ms.

Only the account page reads devices, so a worker loads ua-parser there and
not before (1.6 MiB at import), and its parser knows the browser and system
rules only: uap-core's 633 device rules, which nothing here asks for, would
more than double what it builds (25.8 MiB with them, 11.5 MiB without).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from flask_babel import gettext

UNKNOWN = "Other"  # uap-core's family for what no rule matches


@dataclass(frozen=True)
class Device:
    browser: str | None  # e.g. "Chrome", "Mobile Safari"; None when unknown
    os: str | None  # e.g. "Windows", "iOS"; None when unknown

    @property
    def label(self) -> str:
        """How the account page and its messages name the device."""
        if self.browser is None and self.os is None:
            return gettext("不明な端末")
        browser = self.browser or gettext("不明なブラウザ")
        return browser + " / " + (self.os or gettext("不明なOS"))


def device_of(user_agent: str | None) -> Device:
    if not user_agent:
        return Device(None, None)
    parser = _parser()
    browser = parser.parse_user_agent(user_agent)
    os = parser.parse_os(user_agent)
    return Device(
        browser.family if browser is not None and browser.family != UNKNOWN else None,
        os.family if os is not None and os.family != UNKNOWN else None,
    )


@cache
def _parser():
    """ua-parser's default parser (its best matcher, its cache) without device rules."""
    import ua_parser

    browsers, systems, _devices = ua_parser.load_lazy_builtins()
    return ua_parser.Parser.from_matchers((browsers, systems, []))
