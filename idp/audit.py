"""The one way to record a security event (SPEC §5), and the transaction rule.

The rule: the view (or CLI command) commits. It commits once, after the
action and its audit row are both in the session, so that they commit
together or not at all; the functions it calls add to the session and
never commit. A deliberate early commit is a named function that says in
its docstring why it cannot wait for the view.
"""

from flask import has_request_context, request

from .extensions import db
from .models import AuditEvent
from .ops import count_event
from .security.clock import now


def record(event: str, outcome: str = "success", *, account=None, client_id=None, **details) -> None:
    """Add an audit row to the current transaction; the caller commits."""
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
