"""Codes and tokens: how they are stored, spent, looked up and revoked.

Only digests are stored. Codes are never deleted when used: ``used_at`` is a
tombstone, so a second presentation is recognised and what the first one
bought is revoked (RFC 9700 4.2.4). Refresh tokens rotate within a family;
presenting a rotated one revokes the whole family.

How Authlib calls this module (through the grants in ``oauth/grants.py``):

1. /authorize: ``save_authorization_code`` → ``store_code``.
2. /token with a code or a refresh token, in Authlib's order:
   a. ``query_authorization_code`` / ``authenticate_refresh_token`` →
      ``usable_code`` / ``usable_refresh_token``: the live credential of this
      client, by digest. A spent one presented again is reuse: what it bought
      is revoked (``revoke_reused_code``, ``revoke_replayed_family``).
   b. Authlib checks the rest (PKCE, redirect URI, scope) and generates the
      token response.
   c. ``save_token``: Authlib saves the new token *before* it spends the
      credential (d). Stored now, a token would outlive an exchange that then
      loses the credential to a concurrent one; so the grant only builds the
      row here (``new_row``) and keeps it.
   d. ``delete_authorization_code`` / ``revoke_old_credential`` →
      ``spend_code`` / ``spend_refresh_token``: the credential is claimed and
      the kept row stored by one statement (``claim_and_store``). Of two
      concurrent exchanges exactly one wins and only its token exists; the
      other is reuse, as in (a).
3. /token for client_credentials: nothing is stored. The token is a
   self-contained RFC 9068 JWT with no customer and no refresh token, as
   the peer providers issue it; Authlib's ``save_token`` only counts it
   (``issued_self_contained``). Revocation and introspection recognise one
   by its signature (``self_contained``), and a revocation writes its jti to
   ``revoked_access_tokens``, which introspection reads. UserInfo never
   accepts one (no customer), as before.
4. UserInfo, revocation, introspection: ``by_digest`` and ``presented``;
   ``revoke_presented`` (RFC 7009). The plain requests below Flask
   (``oauth.lean``): ``userinfo_row`` and ``introspected``; at the token
   endpoint ``code_row`` and ``refresh_row`` for (2a), then
   ``claim_and_store_on`` for (2d).

Transactions: on PostgreSQL the token, UserInfo and introspection endpoints
run without one (``without_transaction``): every write there is a single
statement, and each request saves the BEGIN and COMMIT round trips. A
revocation for reuse leaves that mode first (``_one_transaction``), so that
it and its audit row commit together when the request ends. If a token
response fails after its statement, the client's retry counts as reuse and
revokes it.
"""

from __future__ import annotations

import functools
from operator import attrgetter
from typing import NamedTuple

from flask import current_app
from joserfc import jwt
from joserfc.errors import JoseError
from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm.attributes import manager_of_class

from . import audit
from .claims import allowed_claims_request
from .extensions import db
from .keys import DEFAULT_ALG, keyring
from .models import Account, AuthorizationCode, Client, Contract, LoginSession, RevokedAccessToken, Token
from .ops import TOKENS
from .security.clock import now
from .security.secrets import digest, new_secret

# --- codes -------------------------------------------------------------------


def store_code(code: str, client: Client, login_session: LoginSession, redirect_uri: str | None, scope: str,
               data: dict) -> None:
    """A new code for the customer of ``login_session``; ``data`` holds the
    authorization request's parameters (nonce, PKCE, claims)."""
    issued = now()
    # A Core INSERT: nothing reads the row back in this request, and the
    # ORM's unit of work cost more CPU than the statement (~300 µs).
    db.session.execute(_insert_code(), {
        "code_digest": digest(code),
        "client_id": client.client_id,
        "account_id": login_session.account_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "nonce": data.get("nonce"),
        "code_challenge": data.get("code_challenge"),
        "code_challenge_method": data.get("code_challenge_method"),
        "claims_request": allowed_claims_request(data.get("claims"), client),
        "dpop_jkt": data.get("dpop_jkt"),  # RFC 9449 10, checked by oauth/dpop.py
        "auth_time": login_session.auth_time,
        "sid": login_session.sid,
        "amr": login_session.amr,
        "created_at": issued,
        "expires_at": issued + current_app.config["AUTHORIZATION_CODE_LIFETIME"],
    })
    db.session.commit()


def usable_code(code: str, client_id: str) -> AuthorizationCode | None:
    """A live code of this client. A code presented after it was used is
    reuse: what the first use issued is revoked."""
    row = db.session.scalar(db.select(AuthorizationCode).filter_by(code_digest=digest(code), client_id=client_id))
    if row is None:
        return None
    if row.used_at is not None:
        revoke_reused_code(row, now())
        return None
    if now() >= row.expires_at:
        return None
    return row


def spend_code(code: AuthorizationCode, token_row: dict) -> bool:
    """Claim the code and store the token it bought; False when another
    exchange spent it first (that is reuse: what it bought is revoked)."""
    return _spend(code, "used_at", token_row, revoke_reused_code)


def revoke_reused_code(code: AuthorizationCode, at: int) -> None:
    _revoke_for_reuse(code, Token.authorization_code_id == code.id, "token.code_reuse", at)


# --- tokens ------------------------------------------------------------------


def new_row(token: dict, grant_type: str | None, client_id: str, account: Account | None,
            origin: AuthorizationCode | Token | None = None, dpop_jkt: str | None = None) -> dict:
    """The ``tokens`` row of a token response, as column values. ``origin``
    is what bought it: a code starts a family, a refresh token continues its
    own. ``dpop_jkt``: the DPoP key it is bound to (oauth/dpop.py). Counted,
    not audited: issuing is routine; reuse and revocation are audited."""
    config = current_app.config
    issued = now()
    row = {
        "client_id": client_id,
        "account_id": account.id if account is not None else None,
        "scope": token.get("scope", ""),
        "access_token_digest": digest(token["access_token"]),
        "refresh_token_digest": None,
        "issued_at": issued,
        "access_expires_at": issued + token["expires_in"],
        "refresh_expires_at": None,
        "authorization_code_id": None,
        "sid": None,
        "auth_time": None,
        "claims_request": None,
        "dpop_jkt": dpop_jkt,
    }
    if isinstance(origin, Token):
        row["family_id"], row["family_expires_at"] = origin.family_id, origin.family_expires_at
        row["authorization_code_id"] = origin.authorization_code_id
    else:
        row["family_id"] = new_secret(16)
        row["family_expires_at"] = issued + config["REFRESH_TOKEN_ABSOLUTE_LIFETIME"]
        if origin is not None:
            row["authorization_code_id"] = origin.id
    if origin is not None:
        row["sid"], row["auth_time"], row["claims_request"] = origin.sid, origin.auth_time, origin.claims_request
    if "refresh_token" in token:
        row["refresh_token_digest"] = digest(token["refresh_token"])
        row["refresh_expires_at"] = min(issued + config["REFRESH_TOKEN_IDLE_LIFETIME"], row["family_expires_at"])
    TOKENS.labels(grant_type or "unknown").inc()
    return row


def by_digest(kind: str, presented: str) -> Token | None:
    """The row of a presented access or refresh token (``kind``), by digest."""
    return db.session.scalar(_select_token(kind), {"digest": digest(presented)})


def userinfo_row(connection, presented: str):
    """For UserInfo below Flask (``oauth.lean``): the access token's row
    (scope, client_id, claims_request, access_expires_at, revoked_at) and
    its customer, as a transient Account with its Contract, by one
    statement on ``connection``; None for an unknown token or one without a
    customer."""
    found = connection.execute(_select_userinfo(), {"digest": digest(presented)}).first()
    if found is None:
        return None
    contract = _transient(Contract, "contract", _CONTRACT_COLUMNS, found)
    return found, _transient(Account, "account", _ACCOUNT_COLUMNS, found, contract=contract)


def code_row(connection, presented: str, client_id: str) -> tuple[AuthorizationCode, Account] | None:
    """For the token endpoint below Flask (``oauth.lean``): this client's
    code, and its customer with the contract (what the ID token's claims
    may read), as transient objects by one statement on ``connection``;
    None for an unknown code. ``usable_code`` judges it on the Flask path."""
    found = connection.execute(_select_code(), {"digest": digest(presented), "client_id": client_id}).first()
    if found is None:
        return None
    contract = _transient(Contract, "contract", _CONTRACT_COLUMNS, found)
    account = _transient(Account, "account", _CODE_ACCOUNT, found, contract=contract)
    return _transient(AuthorizationCode, "code", _CODE_COLUMNS, found, account=account), account


def refresh_row(connection, presented: str) -> tuple[Token, Account | None] | None:
    """For the token endpoint below Flask (``oauth.lean``): the refresh
    token's row, and its customer, as transient objects by one statement on
    ``connection``; None for an unknown token. ``usable_refresh_token``
    judges it on the Flask path, ``Token.is_refresh_usable`` here."""
    found = connection.execute(_select_refresh(), {"digest": digest(presented)}).first()
    if found is None:
        return None
    account = None
    if found.token_account_id is not None:
        account = _transient(Account, "account", _REFRESHED_ACCOUNT, found)
    return _transient(Token, "token", _REFRESHED_TOKEN, found), account


def usable_refresh_token(presented: str, client_id: str) -> Token | None:
    """A live refresh token of this client; a rotated one presented again
    is replay, and the whole family is revoked."""
    row = by_digest("refresh_token", presented)
    if row is None or row.client_id != client_id:
        return None
    if row.rotated_at is not None and row.revoked_at is None:
        revoke_replayed_family(row, now())
        return None
    return row if row.is_refresh_usable(now()) else None


def spend_refresh_token(refresh_token: Token, token_row: dict) -> bool:
    """Rotate: claim the old token and store its successor; False when
    another refresh claimed it first (that is replay: the family is revoked)."""
    return _spend(refresh_token, "rotated_at", token_row, revoke_replayed_family)


def revoke_replayed_family(token: Token, at: int) -> None:
    _revoke_for_reuse(token, Token.family_id == token.family_id, "token.refresh_reuse", at)


def revoke(condition, at: int) -> None:
    """Revoke every live token matching ``condition`` (e.g. ``Token.client_id == …``)."""
    db.session.execute(update(Token).where(condition, Token.revoked_at.is_(None)).values(revoked_at=at))


def revoke_account(account: Account, at: int) -> None:
    """Every token of the account, and every code not yet spent: a code
    issued before now must not buy tokens after it."""
    revoke(Token.account_id == account.id, at)
    db.session.execute(
        update(AuthorizationCode)
        .where(AuthorizationCode.account_id == account.id, AuthorizationCode.used_at.is_(None),
               AuthorizationCode.expires_at > at)
        .values(expires_at=at)
    )


def _spend(credential: AuthorizationCode | Token, column: str, token_row: dict, on_reuse) -> bool:
    model, t = type(credential), now()
    if claim_and_store(model, credential.id, column, t, token_row):
        return True
    on_reuse(db.session.get(model, credential.id), t)
    return False


def _revoke_for_reuse(credential: AuthorizationCode | Token, condition, event: str, at: int) -> None:
    _one_transaction()
    revoke(condition, at)
    audit.record(event, "failure", account=credential.account, client_id=credential.client_id)


# --- a token presented to revocation or introspection --------------------------


_OF_THE_ROW = object()  # PresentedToken: the customer is the Token row's own


class PresentedToken:
    """A token as presented to revocation or introspection: access or refresh
    (what Authlib's endpoints ask of it), judged at ``at`` (the app clock's
    now when it was read). ``row`` is a Token, or below Flask a row of
    ``introspected``'s statement, which passes the customer as ``account``.
    ``client``: the client it was issued to, once introspection has checked
    that this is who asks (server.IntrospectionEndpoint.check_permission)."""

    client = None

    def __init__(self, row, kind: str, at: int, account=_OF_THE_ROW) -> None:
        self.row, self.kind, self.at = row, kind, at
        self._account = account

    @property
    def account(self) -> Account | None:
        """The customer (None for a client_credentials token)."""
        return self.row.account if self._account is _OF_THE_ROW else self._account

    def check_client(self, client) -> bool:
        if self.row.client_id != client.client_id:
            return False
        # A self-contained token is this client's only if the client existed
        # when it was signed: a client deleted and registered again under its
        # ID (clients.delete_client) does not inherit the old one's tokens.
        return not isinstance(self.row, SelfContained) or self.row.issued_at >= client.client_id_issued_at

    def get_scope(self) -> str:
        return self.row.scope

    def is_revoked(self) -> bool:
        return self.row.revoked_at is not None or (self.kind == "refresh_token" and self.row.rotated_at is not None)

    def is_expired(self) -> bool:
        return self.at >= self.get_expires_at()

    def get_expires_at(self) -> int:
        return self.row.refresh_expires_at if self.kind == "refresh_token" else self.row.access_expires_at


def _kinds(token_type_hint: str | None) -> tuple[str, str]:
    """The kinds a presented token is tried as, the hinted one first (RFC 7009 2.1, RFC 7662 2.1)."""
    return ("refresh_token", "access_token") if token_type_hint == "refresh_token" else ("access_token", "refresh_token")


def presented(token_string: str, token_type_hint: str | None) -> PresentedToken | None:
    """The token a client presents to revocation or introspection, tried as
    the kind it hints first; else a self-contained one."""
    for kind in _kinds(token_type_hint):
        row = by_digest(kind, token_string)
        if row is not None:
            return PresentedToken(row, kind, now())
    return self_contained(db.session.connection(), token_string, now())


def introspected(connection, token_string: str, token_type_hint: str | None, at: int, *,
                 with_account: bool = True) -> PresentedToken | None:
    """For introspection and revocation below Flask (``oauth.lean``): what
    ``presented`` finds, by one statement on ``connection`` (both kinds at
    once, then the hinted kind first), with its customer as a transient
    Account; else a self-contained token (a second statement). Revocation
    asks ``with_account=False``: it needs only the customer's id (for the
    audit row), and the join to accounts is a quarter of the lookup's cost
    to PostgreSQL. Needs an app context."""
    rows = connection.execute(_select_introspected(with_account), {"digest": digest(token_string)}).all()
    for kind in _kinds(token_type_hint):
        for row in rows:
            if row.as_access if kind == "access_token" else row.as_refresh:
                account = None
                if row.account_id is not None:
                    account = _transient(Account, "account", _INTROSPECTED_ACCOUNT if with_account else _ACCOUNT_ID,
                                         row)
                return PresentedToken(row, kind, at, account)
    return self_contained(connection, token_string, at)


def revoke_presented(token: PresentedToken) -> None:
    """Revoke what a client presented. One already revoked is left alone:
    RFC 7009 2.2 answers 200 either way, and the audit log has its row."""
    if token.row.revoked_at is not None:
        return
    db.session.execute(*_revocation(token, now(), db.session.get_bind().dialect.name))
    audit.record("token.revoked", account=token.account, client_id=token.row.client_id, kind=token.kind)


def revoke_below_flask(connection, token: PresentedToken, at: int, ip_address: str | None, user_agent: str) -> None:
    """``revoke_presented`` for revocation below Flask (``oauth.lean``), on
    its ``connection``, audited alike: on PostgreSQL one statement (the
    UPDATE a CTE of the audit row's INSERT, so both or neither), on SQLite
    two in the connection's transaction."""
    event = audit.row_values("token.revoked", "success", account=token.account, client_id=token.row.client_id,
                             details={"kind": token.kind}, at=at, ip_address=ip_address, user_agent=user_agent)
    statement, params = _revocation(token, at, connection.dialect.name)
    if connection.dialect.name == "postgresql":
        connection.execute(_revoke_and_audit(statement), {**params, **event})
    else:
        connection.execute(statement, params)
        connection.execute(audit.insert_statement(), event)


def _revocation(token: PresentedToken, at: int, dialect: str):
    """The statement revoking ``token``, and its parameters. RFC 7009 2.1:
    revoking a refresh token ends the whole grant. A self-contained token
    goes on the list of revoked ones until it expires."""
    row = token.row
    if isinstance(row, SelfContained):
        return _list_revoked(dialect), {"revoked_jti": row.id, "revoked_client_id": row.client_id,
                                        "revoked_expires_at": row.access_expires_at, "at": at}
    grant = token.kind == "refresh_token"
    return _revoke_statement(grant), {"which": row.family_id if grant else row.id, "at": at}


# --- self-contained access tokens (client_credentials) ---------------------------


class SelfContained(NamedTuple):
    """A client_credentials access token as revocation and introspection read
    a ``tokens`` row: its claims, and when it was revoked (from the list)."""

    id: str  # the jti
    client_id: str
    scope: str
    issued_at: int
    access_expires_at: int
    dpop_jkt: str | None  # RFC 9449 6.1: cnf.jkt
    revoked_at: int | None
    # What a stored row has and such a token has not.
    refresh_expires_at = None
    rotated_at = None
    family_id = None
    account = None
    claims_request = None

    # --- as a resource request presents it (Authlib's TokenMixin, as Token's) ---

    def get_scope(self) -> str:
        return self.scope

    def is_expired(self) -> bool:
        return now() >= self.access_expires_at

    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def get_user(self) -> None:
        return None

    def get_client(self) -> Client | None:
        return Client.lookup(self.client_id)


def issued_self_contained(grant_type: str) -> None:
    """Count a token that is not stored (client_credentials), as ``new_row``
    counts the stored ones."""
    TOKENS.labels(grant_type).inc()


def bearer(token_string: str) -> Token | SelfContained | None:
    """The access token a resource request (UserInfo) presents: its row, or
    a self-contained one, which Authlib's resource protector judges alike
    (expired, revoked, its scope); None for anything else, or a customer's
    token once the customer is no longer active."""
    row = by_digest("access_token", token_string)
    if row is None:
        found = self_contained(db.session.connection(), token_string, now())
        return found.row if found is not None else None
    return row if row.account is None or row.account.is_active else None


def self_contained(connection, token_string: str, at: int) -> PresentedToken | None:
    """``token_string`` as a client_credentials access token of this OP, or
    None: a JWT of type at+jwt (RFC 9068 2.1) signed by one of the OP's keys
    with its access-token algorithm, issued by this OP, whose subject is the
    client itself (RFC 9068 2.2: no resource owner). Revoked if its jti is on
    the list. The signature is joserfc's to check; expiry is judged at
    ``at``, as for a stored token. Needs an app context (the key ring)."""
    if token_string.count(".") != 2:
        return None
    try:
        token = jwt.decode(token_string, keyring().public, algorithms=[DEFAULT_ALG])
    except (JoseError, ValueError):
        return None
    claims = token.claims
    client_id, jti, cnf = claims.get("client_id"), claims.get("jti"), claims.get("cnf")
    if (token.header.get("typ") != "at+jwt" or claims.get("iss") != current_app.config["ISSUER"]
            or not isinstance(client_id, str) or claims.get("sub") != client_id
            or not isinstance(jti, str) or not 0 < len(jti) <= 64
            or not all(type(claims.get(name)) is int for name in ("iat", "exp"))
            or not isinstance(claims.get("scope", ""), str) or not (cnf is None or isinstance(cnf, dict))):
        return None
    jkt = cnf.get("jkt") if cnf is not None else None
    revoked = connection.execute(_select_revoked(), {"jti": jti}).first()
    row = SelfContained(jti, client_id, claims.get("scope") or "", claims["iat"], claims["exp"],
                        jkt if isinstance(jkt, str) else None, revoked.revoked_at if revoked is not None else None)
    return PresentedToken(row, "access_token", at, None)


def prune_revoked(at: int) -> int:
    """Forget revocations of tokens that have expired since (``flask audit prune``)."""
    return db.session.execute(delete(RevokedAccessToken).where(RevokedAccessToken.expires_at <= at)).rowcount


# --- transactions and statements ------------------------------------------------


def without_transaction() -> None:
    """On PostgreSQL, autocommit for this request: every write of the token
    endpoint is one atomic statement, and the reading endpoints write
    nothing (issue 7). SQLite keeps its transaction: there a claim and the
    token it buys are two statements (no DML in CTEs), and a round trip
    costs nothing."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


def _one_transaction() -> None:
    """Leave the token endpoint's autocommit (PostgreSQL): the revocation and
    its audit row that follow commit together, when the request ends."""
    if db.session.connection().get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        db.session.commit()


def claim_and_store(model, row_id: int, column: str, at: int, token_row: dict) -> bool:
    """Spend a code or refresh token and store the token it bought, atomically:
    ``column`` is set only if nobody set it before, and the new token row is
    written only by the winner. True for the winner.

    On PostgreSQL this is one statement (a data-modifying CTE), so that with
    the token endpoint in autocommit mode an exchange costs three round trips:
    the pool's ping (of an idle connection), reading the credential, and this."""
    return claim_and_store_on(db.session.connection(), model, row_id, column, at, token_row)


def claim_and_store_on(connection, model, row_id: int, column: str, at: int, token_row: dict) -> bool:
    """``claim_and_store`` on ``connection``: the session's, or below Flask
    (``oauth.lean``) a held one (PostgreSQL) or one in a transaction (SQLite)."""
    params = {"claim_id": row_id, "claim_at": at}
    if connection.dialect.name != "postgresql":  # SQLite: no DML in CTEs; one transaction (without_transaction)
        if connection.execute(_claim(model, column), params).rowcount != 1:
            return False
        connection.execute(_insert_token(), token_row)
        return True
    params.update((f"new_{name}", value) for name, value in token_row.items())
    return connection.execute(_claim_and_insert(model, column, tuple(token_row)), params).first() is not None


# The statements are built once: building and cache-keying a fresh SQLAlchemy
# statement per request cost more CPU than executing it.
@functools.cache
def _select_token(kind: str):
    column = Token.refresh_token_digest if kind == "refresh_token" else Token.access_token_digest
    return db.select(Token).where(column == bindparam("digest"))


# What claims.all_claims and Account.is_active read.
def _labelled(prefix: str, columns):
    """``columns`` selected as PREFIX_KEY, for ``_transient`` to read back."""
    return (column.label(f"{prefix}_{column.key}") for column in columns)


def _transient(model, prefix: str, columns, row, **related):
    """A ``model`` object outside the session, from the ``_labelled`` columns of
    ``row``. Made as SQLAlchemy's loading makes one, its values put straight in
    the instance's dict: through ``__init__`` each attribute fires its set
    events, ~20 µs for a Token, on every request below Flask."""
    keys, read = _reader(prefix, tuple(column.key for column in columns))
    instance = manager_of_class(model).new_instance()
    instance.__dict__.update(zip(keys, read(row)), **related)
    return instance


@functools.cache
def _reader(prefix: str, keys: tuple[str, ...]):
    read = attrgetter(*(f"{prefix}_{key}" for key in keys))
    return keys, (read if len(keys) > 1 else lambda row: (read(row),))  # one name: attrgetter gives no tuple


_ACCOUNT_COLUMNS = (Account.subject, Account.login_id, Account.login_id_verified, Account.locale, Account.status)
_CONTRACT_COLUMNS = (Contract.name_kanji, Contract.name_kana, Contract.phones, Contract.customer_number)


@functools.cache
def _select_userinfo():
    return (
        select(Token.scope, Token.client_id, Token.claims_request, Token.access_expires_at, Token.revoked_at,
               Token.dpop_jkt,  # DPoP (RFC 9449): a bound token is never served as Bearer below Flask
               *_labelled("account", _ACCOUNT_COLUMNS), *_labelled("contract", _CONTRACT_COLUMNS))
        .join(Account, Account.id == Token.account_id)
        .join(Contract, Contract.id == Account.contract_id)
        .where(Token.access_token_digest == bindparam("digest"))
    )


# What introspection reads of a token's customer (server.IntrospectionEndpoint); revocation, its id.
_INTROSPECTED_ACCOUNT = (Account.id, Account.subject, Account.login_id, Account.status)
_ACCOUNT_ID = (Account.id,)


def _select_introspected(with_account: bool = True):
    return _introspected_statement(with_account)


@functools.cache
def _introspected_statement(with_account: bool):
    digest_param = bindparam("digest")
    columns = (Token.id, Token.family_id, Token.client_id, Token.scope, Token.issued_at, Token.access_expires_at,
               Token.refresh_expires_at, Token.revoked_at, Token.rotated_at,
               Token.dpop_jkt,  # DPoP: cnf.jkt (RFC 9449 6.2)
               (Token.access_token_digest == digest_param).label("as_access"),
               (Token.refresh_token_digest == digest_param).label("as_refresh"))
    where = or_(Token.access_token_digest == digest_param, Token.refresh_token_digest == digest_param)
    if not with_account:
        return select(*columns, Token.account_id.label("account_id")).where(where)
    return (select(*columns, *_labelled("account", _INTROSPECTED_ACCOUNT))
            .outerjoin(Account, Account.id == Token.account_id).where(where))


# What the code grant reads of a code (grants.AuthorizationCodeGrant, OpenIDCode, new_row) and its customer.
_CODE_COLUMNS = (AuthorizationCode.id, AuthorizationCode.client_id, AuthorizationCode.account_id,
                 AuthorizationCode.redirect_uri, AuthorizationCode.scope, AuthorizationCode.nonce,
                 AuthorizationCode.code_challenge, AuthorizationCode.code_challenge_method,
                 AuthorizationCode.claims_request, AuthorizationCode.dpop_jkt, AuthorizationCode.auth_time,
                 AuthorizationCode.sid, AuthorizationCode.amr, AuthorizationCode.expires_at, AuthorizationCode.used_at)
_CODE_ACCOUNT = (Account.id, *_ACCOUNT_COLUMNS)


@functools.cache
def _select_code():
    return (
        select(*_labelled("code", _CODE_COLUMNS), *_labelled("account", _CODE_ACCOUNT),
               *_labelled("contract", _CONTRACT_COLUMNS))
        .join(Account, Account.id == AuthorizationCode.account_id)
        .join(Contract, Contract.id == Account.contract_id)
        .where(AuthorizationCode.code_digest == bindparam("digest"),
               AuthorizationCode.client_id == bindparam("client_id"))
    )


# What the refresh grant reads of a token (Token.is_refresh_usable, new_row) and its customer (token generator).
_REFRESHED_TOKEN = (Token.id, Token.client_id, Token.account_id, Token.scope, Token.refresh_token_digest,
                    Token.family_id, Token.family_expires_at, Token.authorization_code_id, Token.sid, Token.auth_time,
                    Token.claims_request, Token.refresh_expires_at, Token.rotated_at, Token.revoked_at)
_REFRESHED_ACCOUNT = (Account.id, Account.subject, Account.status)


@functools.cache
def _select_refresh():
    return (
        select(*_labelled("token", _REFRESHED_TOKEN), *_labelled("account", _REFRESHED_ACCOUNT))
        .outerjoin(Account, Account.id == Token.account_id)
        .where(Token.refresh_token_digest == bindparam("digest"))
    )


@functools.cache
def _insert_token():
    return Token.__table__.insert()


@functools.cache
def _insert_code():
    return AuthorizationCode.__table__.insert()


@functools.cache
def _revoke_statement(grant: bool):
    which = Token.family_id if grant else Token.id
    return (update(Token).where(which == bindparam("which"), Token.revoked_at.is_(None))
            .values(revoked_at=bindparam("at")))


@functools.cache
def _revoke_and_audit(revoked):
    return audit.insert_statement().add_cte(revoked.cte("revoked"))


@functools.cache
def _select_revoked():
    return select(RevokedAccessToken.revoked_at).where(RevokedAccessToken.jti == bindparam("jti"))


@functools.cache
def _list_revoked(dialect: str):
    """Put a self-contained token on the list; a concurrent revocation of the
    same token that got there first leaves it as it was (2.2: 200 either way).
    Prefixed bind names: the audit row's INSERT, which takes this as a CTE
    on PostgreSQL, names its own client_id."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(RevokedAccessToken).values(
        jti=bindparam("revoked_jti"), client_id=bindparam("revoked_client_id"),
        expires_at=bindparam("revoked_expires_at"), revoked_at=bindparam("at")).on_conflict_do_nothing()


@functools.cache
def _claim(model, column: str):
    table = model.__table__
    unspent = [table.c[column].is_(None)]
    if "revoked_at" in table.c:  # a refresh token revoked since it was read is spent too
        unspent.append(table.c.revoked_at.is_(None))
    return table.update().where(table.c.id == bindparam("claim_id"), *unspent).values({column: bindparam("claim_at")})


@functools.cache
def _claim_and_insert(model, column: str, names: tuple[str, ...]):
    """The claim as a CTE, and an INSERT of the columns ``names`` (what
    new_row sets; any other column takes its default)."""
    claimed = _claim(model, column).returning(model.__table__.c.id).cte("claimed")
    tokens = Token.__table__
    # Prefixed bind names: Core would read a parameter named like a column of
    # the UPDATE's table as a value to SET.
    row = select(*(bindparam(f"new_{name}", type_=tokens.c[name].type) for name in names)).select_from(claimed)
    return tokens.insert().from_select(list(names), row).returning(tokens.c.id)
