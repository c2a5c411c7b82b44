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

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from flask import has_request_context, request
from sqlalchemy import bindparam

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
    Inside ``action()`` the event becomes part of that action's row.

    The row is written at once by ``insert_statement`` on the session's
    connection, in its transaction: nothing reads it back as an object, and
    the ORM's unit of work for one would cost more CPU than the statement."""
    parts = _parts.get()
    if parts is not None:
        parts.append(_Part(event, account, client_id, details))
        return
    ip_address, user_agent = (request.remote_addr, request.user_agent.string) if has_request_context() else (None, None)
    db.session.execute(insert_statement(), row_values(event, outcome, account=account, client_id=client_id,
                                                      details=details, at=now(), ip_address=ip_address,
                                                      user_agent=user_agent))


def row_values(event: str, outcome: str, *, account, client_id: str | None, details: dict, at: int,
               ip_address: str | None, user_agent: str | None) -> dict:
    """The columns of an audit row, counted in the metrics: what ``record``
    writes, and what code below Flask (``oauth.lean``) writes with
    ``insert_statement`` in its own transaction."""
    count_event(event, details)
    return {
        "created_at": at,
        "event": event,
        "outcome": outcome,
        "account_id": account.id if account is not None else None,
        "client_id": client_id,
        "details": details,
        "ip_address": ip_address,
        "user_agent": user_agent[:512] if user_agent is not None else None,
    }


@functools.cache
def insert_statement():
    """The INSERT of ``row_values``'s columns, each a bind parameter of its name."""
    columns = ("created_at", "event", "outcome", "account_id", "client_id", "details", "ip_address", "user_agent")
    return AuditEvent.__table__.insert().values({name: bindparam(name) for name in columns})


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
