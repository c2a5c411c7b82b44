"""Outgoing mail: compose from templates, queue in the outbox, deliver by SMTP."""

from .outbox import deliver_due, enqueue, read_body

__all__ = ["deliver_due", "enqueue", "read_body"]
