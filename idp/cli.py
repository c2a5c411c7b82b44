"""Operator commands under ``flask --app idp`` (operators script these spellings)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from . import audit, keys, tokens
from .accounts import AccountError, create_account
from .clients import (
    AUTH_METHODS,
    DEFAULT_AUTH_METHOD,
    DEFAULT_SCOPES,
    GRANT_TYPES,
    SUBJECT_TYPES,
    ClientError,
    create_client,
    delete_client,
    describe,
    rotate_secret,
)
from .contracts import ContractImportError, import_contracts
from .extensions import db, unhurried
from .mail import deliver_due
from .models import AuditEvent, Client, SigningKey
from .oauth import backchannel
from .security.clock import now
from .security.throttle import DatabaseCounters

contracts_cli = AppGroup("contracts", help="Contract data from the billing system.")
accounts_cli = AppGroup("accounts", help="iTSCOM IDs.")
clients_cli = AppGroup("clients", help="Relying parties (OIDC clients).")
mail_cli = AppGroup("mail", help="The outgoing mail outbox.")
backchannel_cli = AppGroup("backchannel", help="Back-channel logout notices to relying parties.")
keys_cli = AppGroup("keys", help="Signing keys.")
audit_cli = AppGroup("audit", help="The audit log.")
admins_cli = AppGroup("admins", help="Administrators of the console (/admin).")



@contracts_cli.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def contracts_import(csv_file: Path):
    """Upsert contracts from a billing CSV; a bad row aborts the whole file."""
    try:
        text = csv_file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise click.ClickException(f"{csv_file}: not UTF-8 text") from None
    try:
        report = import_contracts(text)
    except ContractImportError as error:
        raise click.ClickException(f"{csv_file}: {error}; nothing was imported") from None
    audit.record("contracts.imported", file=csv_file.name, created=report.created, updated=report.updated)
    db.session.commit()
    click.echo(f"imported {report.created + report.updated} contracts ({report.created} new, {report.updated} updated)")


@accounts_cli.command("create")
@click.option("--customer-number", required=True)
@click.option("--login-id", required=True)
@click.option("--password", required=True)
@click.option("--contact-email")
@click.option("--contact-unconfirmed", is_flag=True, help="The contact address is not yet confirmed.")
def accounts_create(customer_number, login_id, password, contact_email, contact_unconfirmed):
    """Provision an active iTSCOM ID for an imported contract."""
    try:
        account = create_account(customer_number, login_id, password, contact_email, not contact_unconfirmed)
        db.session.flush()
        audit.record("account.provisioned", account=account, customer_number=customer_number)
        db.session.commit()
    except AccountError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from None
    click.echo(f"created iTSCOM ID {account.login_id} for customer {customer_number}")


@clients_cli.command("create")
@click.option("--name", required=True)
@click.option("--english-name", help="The name English pages show (client_name#en); without one, --name.")
@click.option("--redirect-uri", "redirect_uris", multiple=True)
@click.option("--post-logout-redirect-uri", "post_logout_uris", multiple=True)
@click.option("--backchannel-logout-uri")
@click.option("--grant-type", "grant_types", multiple=True, type=click.Choice(GRANT_TYPES))
@click.option("--scope", "scopes", multiple=True)
@click.option("--auth-method", default=DEFAULT_AUTH_METHOD, type=click.Choice(AUTH_METHODS))
@click.option("--jwks-uri", help="Where the client publishes its keys (private_key_jwt).")
@click.option("--jwks", "jwks_file", type=click.File("r"), help="A JSON file with the client's public JWK Set.")
@click.option("--first-party", is_flag=True, help="An iTSCOM site: no consent page.")
@click.option("--id-token-alg", default=keys.DEFAULT_ALG, type=click.Choice(keys.SUPPORTED_ALGS))
@click.option("--dpop-bound-access-tokens", is_flag=True,
              help="Every token request must carry a DPoP proof (RFC 9449 5.2).")
@click.option("--require-par", is_flag=True,
              help="The client must push its authorization requests (RFC 9126 PAR).")
@click.option("--subject-type", default="public", type=click.Choice(SUBJECT_TYPES),
              help="pairwise: the client sees its own sub per sector identifier (OIDC Core 8.1).")
@click.option("--sector-identifier-uri",
              help="A pairwise client's JSON list of its redirect URIs; needed when they are on several hosts.")
@click.option("--json", "as_json", is_flag=True, help="Print the registration as one JSON object.")
def clients_create(name, english_name, redirect_uris, post_logout_uris, backchannel_logout_uri, grant_types, scopes,
                   auth_method, jwks_uri, jwks_file, first_party, id_token_alg, dpop_bound_access_tokens, require_par,
                   subject_type, sector_identifier_uri, as_json):
    """Register a client; its secret is printed once and stored hashed."""
    try:
        jwks = json.load(jwks_file) if jwks_file else None
    except ValueError:
        raise click.ClickException("--jwks must be a JSON file") from None
    scopes = [s for value in scopes for s in value.split()] or list(DEFAULT_SCOPES)
    try:
        client, secret = create_client(
            name,
            list(redirect_uris),
            list(post_logout_uris),
            backchannel_logout_uri,
            list(grant_types) or ["authorization_code", "refresh_token"],
            scopes,
            auth_method,
            id_token_alg,
            jwks=jwks,
            jwks_uri=jwks_uri,
            first_party=first_party,
            english_name=english_name,
            dpop_bound_access_tokens=dpop_bound_access_tokens,
            require_pushed_authorization_requests=require_par,
            subject_type=subject_type,
            sector_identifier_uri=sector_identifier_uri,
        )
        db.session.commit()
    except ClientError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from None
    _print_client(describe(client, secret), as_json)


@clients_cli.command("initial-token")
@click.option("--expires-in", default=3600, show_default=True, type=click.IntRange(min=60),
              help="Seconds the token stays usable.")
def clients_initial_token(expires_in):
    """Print a single-use initial access token for RFC 7591 registration."""
    from .oauth.registration import issue_initial_token

    token = issue_initial_token(expires_in)
    db.session.commit()
    click.echo(token)


@clients_cli.command("list")
@click.option("--json", "as_json", is_flag=True)
def clients_list(as_json):
    """Every registered client (never a secret)."""
    clients = [describe(c) for c in db.session.scalars(db.select(Client).order_by(Client.id))]
    if as_json:
        click.echo(json.dumps(clients, ensure_ascii=False))
        return
    for c in clients:
        click.echo(f"{c['client_id']}\t{c['token_endpoint_auth_method']}\t{c['client_name']}")


@clients_cli.command("delete")
@click.argument("client_id")
def clients_delete(client_id):
    """Remove a client and revoke its tokens."""
    delete_client(_client(client_id))
    db.session.commit()
    click.echo(f"deleted client {client_id}")


@clients_cli.command("rotate-secret")
@click.argument("client_id")
@click.option("--json", "as_json", is_flag=True)
def clients_rotate_secret(client_id, as_json):
    """Issue a new secret (printed once); the old one stops working at once."""
    client = _client(client_id)
    try:
        secret = rotate_secret(client)
    except ClientError as error:
        raise click.ClickException(str(error)) from None
    db.session.commit()
    _print_client({"client_id": client.client_id, "client_secret": secret}, as_json)


@keys_cli.command("rotate")
@click.option("--alg", type=click.Choice(keys.SUPPORTED_ALGS), multiple=True, help="Default: all of them.")
def keys_rotate(alg):
    """Add a new signing key; it signs after IDP_KEY_PUBLISH_DELAY seconds."""
    rotated = [keys.rotate(name) for name in alg or keys.SUPPORTED_ALGS]
    for row in rotated:
        audit.record("key.rotated", kid=row.kid, alg=row.alg)
    db.session.commit()
    for row in rotated:
        click.echo(f"{row.alg}: new key {row.kid} signs from {row.activates_at}")


@keys_cli.command("list")
@click.option("--json", "as_json", is_flag=True)
def keys_list(as_json):
    """Every signing key and what it does now: next, active, retired, removed."""
    t = now()
    rows = [
        {"kid": k.kid, "alg": k.alg, "state": keys.state(k, t), "created_at": k.created_at,
         "activates_at": k.activates_at, "retired_at": k.retired_at, "removed_at": k.removed_at}
        for k in db.session.scalars(db.select(SigningKey).order_by(SigningKey.id))
    ]
    if as_json:
        click.echo(json.dumps(rows))
        return
    for r in rows:
        click.echo(f"{r['kid']}\t{r['alg']}\t{r['state']}")


@audit_cli.command("export")
@click.option("--since", type=int, help="Epoch seconds: events at or after.")
@click.option("--until", type=int, help="Epoch seconds: events before.")
@click.option("--event", help="Only this event type, e.g. login.failure.")
def audit_export(since, until, event):
    """Print audit events as JSON lines, oldest first."""
    query = db.select(AuditEvent).order_by(AuditEvent.id)
    if since is not None:
        query = query.where(AuditEvent.created_at >= since)
    if until is not None:
        query = query.where(AuditEvent.created_at < until)
    if event:
        query = query.where(AuditEvent.event == event)
    for row in db.session.scalars(query.execution_options(yield_per=1000)):
        click.echo(json.dumps({
            "id": row.id, "at": row.created_at, "event": row.event, "outcome": row.outcome,
            "account_id": row.account_id, "client_id": row.client_id, "ip": row.ip_address,
            "user_agent": row.user_agent, "details": row.details,
        }, ensure_ascii=False))


@audit_cli.command("prune")
def audit_prune():
    """Remove audit events older than IDP_AUDIT_RETENTION_DAYS, used assertion IDs and DPoP proofs,
    expired throttle counters, clients' fetched keys that are stale or no longer named, expired
    pushed authorization requests, and revocations of client_credentials tokens that have expired."""
    from .oauth import dpop
    from .oauth.client_auth import prune_fetched_key_sets, prune_used_assertions
    from .oauth.par import prune_expired

    cutoff = now() - current_app.config["AUDIT_RETENTION_DAYS"] * 86400
    with unhurried(db.session.connection()):  # a year of events may take longer than a request may
        removed = db.session.execute(db.delete(AuditEvent).where(AuditEvent.created_at < cutoff)).rowcount
        prune_used_assertions()
        dpop.prune(now())
        prune_fetched_key_sets(now())
        prune_expired()
        tokens.prune_revoked(now())
    db.session.commit()
    counters = DatabaseCounters.prune(now())
    click.echo(f"removed {removed} audit events older than {current_app.config['AUDIT_RETENTION_DAYS']} days")
    click.echo(f"removed {counters} expired throttle counters")


@admins_cli.command("create")
@click.option("--username", required=True)
@click.option("--password", required=True,
              help="At least 12 characters, not a common password, not containing the username.")
def admins_create(username, password):
    """Create an administrator; prints the TOTP secret to enrol in an authenticator app."""
    from .admin.service import AdminError, create_admin, provisioning_uri

    try:
        admin, secret = create_admin(username, password)
    except AdminError as error:
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo(f"administrator {admin.username} created")
    click.echo(f"TOTP secret: {secret}")
    click.echo(f"provisioning URI: {provisioning_uri(admin.username, secret)}")


@click.command("demo")
@with_appcontext
def demo():
    """Load demo contracts, the demo iTSCOM ID and the demo relying parties (idempotent)."""
    from .demo import LOGIN_ID, PASSWORD, load

    try:
        clients = load()
    except ClientError as error:
        db.session.rollback()
        # The demo sites listen on loopback, where the OP may post only in development.
        raise click.ClickException(f"{error} (set IDP_ALLOW_PRIVATE_OUTBOUND=1 for the demo)") from None
    click.echo(f"demo loaded: issuer {current_app.config['ISSUER']}")
    click.echo(f"  login: {LOGIN_ID} / {PASSWORD}")
    for c in clients.values():
        click.echo(f"  client_id: {c['client_id']}  client_secret: {c['client_secret']}  redirect_uri: {c['redirect_uri']}")


@mail_cli.command("send")
@click.option("--loop", is_flag=True, help="Keep running: the production sender process.")
@click.option("--interval", default=5.0, show_default=True, help="Seconds between rounds with --loop.")
def mail_send(loop, interval):
    """Deliver due mails from the outbox over SMTP (IDP_MAIL_URL), with retries."""
    if current_app.extensions["idp.mail"] is None:
        raise click.ClickException("IDP_MAIL_URL is not set: mails stay in the development outbox (/dev/mail)")
    _rounds(deliver_due, "mail", loop, interval)


@backchannel_cli.command("send")
@click.option("--loop", is_flag=True, help="Keep running: retries what the web nodes could not send.")
@click.option("--interval", default=5.0, show_default=True, help="Seconds between rounds with --loop.")
def backchannel_send(loop, interval):
    """Deliver due back-channel logout notices to relying parties, with retries."""
    _rounds(backchannel.deliver_due, "back-channel logout", loop, interval)


def _rounds(deliver, what: str, loop: bool, interval: float) -> None:
    """One delivery round, or rounds forever: an error in one round (the
    database restarting, say) is logged and the next round tries again."""
    while True:
        try:
            sent, failed = deliver()
        except Exception:
            if not loop:
                raise
            current_app.logger.exception("%s delivery round failed", what)
            db.session.rollback()
        else:
            if sent or failed:
                click.echo(f"{what}: {sent} sent, {failed} failed (will retry)")
        if not loop:
            return
        time.sleep(interval)


def _client(client_id: str) -> Client:
    client = db.session.scalar(db.select(Client).filter_by(client_id=client_id))
    if client is None:
        raise click.ClickException(f"no client {client_id}")
    return client


def _print_client(body: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(body, ensure_ascii=False))
    else:
        for key, value in body.items():
            click.echo(f"{key}: {value}")


def init_app(app) -> None:
    for command in (contracts_cli, accounts_cli, clients_cli, mail_cli, backchannel_cli, keys_cli, audit_cli, admins_cli, demo):
        app.cli.add_command(command)
