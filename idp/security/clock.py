"""Time, injectable: every expiry check asks the app's clock, never time()."""

import time
from datetime import timedelta, timezone

from flask import current_app

# Japan time, in which customers and operators read every date (no daylight saving time).
JAPAN = timezone(timedelta(hours=9), "JST")


class SystemClock:
    """Wall-clock seconds since the epoch."""

    def now(self) -> int:
        return int(time.time())


def now() -> int:
    """The current time, in whole seconds, from the app's clock."""
    return current_app.extensions["idp.clock"].now()
