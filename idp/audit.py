"""The one way to record a security event (SPEC §5), and the transaction rule.

The rule: the view (or CLI command) commits. It commits once, after the
action and its audit row are both in the session, so that they commit
together or not at all; the functions it calls add to the session and
never commit. A deliberate early commit is a named function that says in
its docstring why it cannot wait for the view.

One action, one row: an action built on functions that record events of
their own (the console's 「新規登録」 calls clients.create_client, which
records client.created) runs inside ``action()``, and its row is the only
one written.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from flask import has_request_context, request

from .extensions import db
from .models import AuditEvent
from .ops import count_event
from .security.clock import now


@dataclass(frozen=True)
class _Part:
    event: str
    account: object
    client_id: str | None
    details: dict


# The events recorded inside the innermost action() of this thread (or task).
_parts: ContextVar[list[_Part] | None] = ContextVar("idp_audit_parts", default=None)


def record(event: str, outcome: str = "success", *, account=None, client_id=None, **details) -> None:
    """Add an audit row to the current transaction; the caller commits.
    Inside ``action()`` the event becomes part of that action's row."""
    parts = _parts.get()
    if parts is not None:
        parts.append(_Part(event, account, client_id, details))
        return
    row = AuditEvent(
        created_at=now(),
        event=event,
        outcome=outcome,
        account_id=account.id if account is not None else None,
        client_id=client_id,
        details=details,
    )
    if has_request_context():
        row.ip_address = request.remote_addr
        row.user_agent = (request.user_agent.string or "")[:512]
    db.session.add(row)
    count_event(event, details)


@contextmanager
def action(event: str, *, account=None, client_id=None, **details) -> Iterator[None]:
    """Record ``event`` once for everything done inside the block: the
    events recorded inside are named in its details under "includes", and
    fill in the account, client and details the action does not give.
    Nothing is recorded when the block raises."""
    parts: list[_Part] = []
    token = _parts.set(parts)
    try:
        yield
    finally:
        _parts.reset(token)
    merged: dict = {}
    for part in parts:
        account = account if account is not None else part.account
        client_id = client_id or part.client_id
        merged.update(part.details)
    if parts:
        merged["includes"] = [part.event for part in parts]
    record(event, account=account, client_id=client_id, **{**merged, **details})
