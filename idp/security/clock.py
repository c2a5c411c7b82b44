"""Time, injectable: every expiry check asks the app's clock, never time()."""

import time

from flask import current_app


class SystemClock:
    """Wall-clock seconds since the epoch."""

    def now(self) -> int:
        return int(time.time())


def now() -> int:
    """The current time, in whole seconds, from the app's clock."""
    return current_app.extensions["idp.clock"].now()
