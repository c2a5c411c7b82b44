"""Stored things, one module each. Importing this package registers them all."""

from .account import Account
from .admin import Admin
from .assertion import UsedAssertion, UsedDPoPProof
from .audit import AuditEvent
from .backchannel import BackchannelLogout
from .client import Client
from .contact_change import ContactChange
from .contract import Contract
from .fetched_keys import FetchedKeySet
from .grant import AuthorizationCode, Consent, RevokedAccessToken, Token
from .key import SigningKey
from .passkey import Passkey
from .mail import OutboxMail
from .pushed_request import PushedRequest
from .recovery import RecoveryProcedure
from .registration import PendingRegistration
from .registration_token import InitialAccessToken
from .second_factor import RecoveryCode, TotpFactor
from .session import LoginSession
from .throttle import ThrottleCounter

__all__ = [
    "Account",
    "Admin",
    "AuditEvent",
    "BackchannelLogout",
    "AuthorizationCode",
    "Client",
    "Consent",
    "ContactChange",
    "Contract",
    "FetchedKeySet",
    "InitialAccessToken",
    "LoginSession",
    "OutboxMail",
    "Passkey",
    "PendingRegistration",
    "PushedRequest",
    "RecoveryCode",
    "RecoveryProcedure",
    "RevokedAccessToken",
    "SigningKey",
    "ThrottleCounter",
    "Token",
    "TotpFactor",
    "UsedAssertion",
    "UsedDPoPProof",
]
