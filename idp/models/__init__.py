"""Stored things, one module each. Importing this package registers them all."""

from .account import Account
from .audit import AuditEvent
from .client import Client
from .contract import Contract
from .grant import AuthorizationCode, Consent, Token
from .key import SigningKey
from .mail import OutboxMail
from .recovery import RecoveryProcedure
from .registration import PendingRegistration
from .session import LoginSession

__all__ = [
    "Account",
    "AuditEvent",
    "AuthorizationCode",
    "Client",
    "Consent",
    "Contract",
    "LoginSession",
    "OutboxMail",
    "PendingRegistration",
    "RecoveryProcedure",
    "SigningKey",
    "Token",
]
