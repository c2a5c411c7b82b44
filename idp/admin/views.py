"""管理コンソール (/admin): what operators do, each action audited.

An administrator signs in with username, password and a TOTP code; the
admin session is separate from any customer's OP session and ends after
IDP_ADMIN_IDLE_TIMEOUT seconds without a request. Every form is a POST with
a CSRF token, answered with 303.
"""

from __future__ import annotations

import re
import secrets
from datetime import date, datetime, time, timedelta
from functools import wraps

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from .. import audit, keys
from ..accounts import end_everything
from ..claims import SUPPORTED_SCOPES
from ..clients import (
    AUTH_METHODS,
    GRANT_TYPES,
    ClientError,
    align_secret,
    build_metadata,
    create_client,
    delete_client,
    rotate_secret,
)
from ..contracts import ContractImportError, import_contracts, parse_csv
from ..extensions import db
from ..models import Account, Admin, AuditEvent, Client, Contract, SigningKey
from ..security.clock import JAPAN, now
from ..security.throttle import retry_after_header, retry_after_text
from . import words
from .service import sign_in

bp = Blueprint("admin", __name__, url_prefix="/admin")
PAGE_SIZE = 50
DIGITS = re.compile(r"[0-9]{1,12}")


@bp.context_processor
def _words():
    return {"words": words}


def admin_required(view):
    """A live admin session: the administrator exists and is enabled, this
    session is the one their last sign-in started (logout ends it everywhere),
    it is not idle for longer than ADMIN_IDLE_TIMEOUT nor older than
    ADMIN_SESSION_LIFETIME."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        t = now()
        config = current_app.config
        admin = db.session.get(Admin, session.get("admin_id", 0)) if session.get("admin_id") else None
        live = (
            admin is not None and not admin.disabled and admin.session_nonce
            and secrets.compare_digest(admin.session_nonce, session.get("admin_nonce", ""))
            and t - session.get("admin_seen", 0) <= config["ADMIN_IDLE_TIMEOUT"]
            and t - session.get("admin_since", 0) <= config["ADMIN_SESSION_LIFETIME"]
        )
        if not live:
            for key in ("admin_id", "admin_nonce", "admin_seen", "admin_since"):
                session.pop(key, None)
            return redirect(url_for("admin.login"), 303)
        session["admin_seen"] = t
        return view(*args, **kwargs)

    return wrapped


def record(event: str, **details) -> None:
    audit.record(event, admin_id=session.get("admin_id"), **details)


@bp.route("/login", methods=["GET", "POST"])
def login():
    error, status, wait = None, 200, 0
    if request.method == "POST":
        result = sign_in(request.form.get("username", ""), request.form.get("password", ""),
                         request.form.get("code", ""), request.remote_addr)
        if result.admin is not None:
            nonce = secrets.token_urlsafe(24)
            result.admin.session_nonce = nonce  # one live console session per administrator
            db.session.commit()
            session.clear()  # a fresh session: no fixation, nothing of a customer's flow
            session.update(admin_id=result.admin.id, admin_nonce=nonce, admin_seen=now(), admin_since=now())
            return redirect(url_for("admin.index"), 303)
        wait = result.retry_after
        error = (f"しばらくしてから再度お試しください（{retry_after_text(wait)}）。" if wait
                 else "ユーザー名、パスワードまたは確認コードが正しくありません。")
        status = 429 if wait else 401
    return render_template("admin/login.html", error=error), status, retry_after_header(wait)


@bp.route("/logout", methods=["POST"])
def logout():
    admin = db.session.get(Admin, session.get("admin_id", 0)) if session.get("admin_id") else None
    if admin is not None and admin.session_nonce == session.get("admin_nonce"):
        admin.session_nonce = None  # every copy of this session ends too
        record("admin.logout")
    db.session.commit()
    session.clear()
    return redirect(url_for("admin.login"), 303)


@bp.route("/")
@admin_required
def index():
    return render_template("admin/index.html")


# --- clients ---------------------------------------------------------------

@bp.route("/clients")
@admin_required
def clients():
    rows = db.session.scalars(db.select(Client).order_by(Client.id)).all()
    return render_template("admin/clients.html", clients=rows)


@bp.route("/clients/new", methods=["GET", "POST"])
@admin_required
def client_new():
    if request.method == "POST":
        try:
            client, secret = create_client(*_client_form_args(), first_party=bool(request.form.get("first_party")))
        except ClientError as error:
            return _client_form(None, words.client_error(error)), 400
        record("admin.client_created", client_id=client.client_id)
        db.session.commit()
        return render_template("admin/client_secret.html", client=client, secret=secret)
    return _client_form(None)


@bp.route("/clients/<client_id>", methods=["GET", "POST"])
@admin_required
def client_edit(client_id):
    client = _client(client_id)
    if request.method == "POST":
        kept = client.client_metadata  # keys and their alg: not on this form, kept as registered
        try:
            client.client_metadata = build_metadata(
                *_client_form_args(), jwks=kept.get("jwks"), jwks_uri=kept.get("jwks_uri"),
                token_endpoint_auth_signing_alg=kept.get("token_endpoint_auth_signing_alg"))
        except ClientError as error:
            db.session.rollback()
            return _client_form(client, words.client_error(error)), 400
        client.first_party = bool(request.form.get("first_party"))
        secret = align_secret(client)
        record("admin.client_updated", client_id=client_id)
        db.session.commit()
        if secret:
            return render_template("admin/client_secret.html", client=client, secret=secret)
        flash("保存しました。")
        return redirect(url_for("admin.client_edit", client_id=client_id), 303)
    return _client_form(client)


@bp.route("/clients/<client_id>/rotate-secret", methods=["POST"])
@admin_required
def client_rotate(client_id):
    client = _client(client_id)
    try:
        secret = rotate_secret(client)
    except ClientError as error:
        flash(words.client_error(error))
        return redirect(url_for("admin.client_edit", client_id=client_id), 303)
    record("admin.client_secret_rotated", client_id=client_id)
    db.session.commit()
    return render_template("admin/client_secret.html", client=client, secret=secret)


@bp.route("/clients/<client_id>/disable", methods=["POST"])
@admin_required
def client_disable(client_id):
    client = _client(client_id)
    client.disabled = not client.disabled
    record("admin.client_disabled" if client.disabled else "admin.client_enabled", client_id=client_id)
    db.session.commit()
    return redirect(url_for("admin.client_edit", client_id=client_id), 303)


@bp.route("/clients/<client_id>/delete", methods=["POST"])
@admin_required
def client_delete(client_id):
    delete_client(_client(client_id))
    record("admin.client_deleted", client_id=client_id)
    db.session.commit()
    flash("削除しました。")
    return redirect(url_for("admin.clients"), 303)


def _client(client_id: str) -> Client:
    client = db.session.scalar(db.select(Client).filter_by(client_id=client_id))
    if client is None:
        abort(404)
    return client


def _lines(name: str) -> list[str]:
    return [line.strip() for line in request.form.get(name, "").splitlines() if line.strip()]


def _client_form_args() -> tuple:
    form = request.form
    return (
        form.get("name", ""),
        _lines("redirect_uris"),
        _lines("post_logout_redirect_uris"),
        form.get("backchannel_logout_uri", "").strip() or None,
        form.getlist("grant_types"),
        form.get("scope", "").split(),
        form.get("auth_method", "client_secret_basic"),
        form.get("id_token_alg", "RS256"),
    )


def _client_form(client: Client | None, error: str | None = None):
    return render_template("admin/client_form.html", client=client, error=error, grant_types=GRANT_TYPES,
                           auth_methods=AUTH_METHODS, scopes=SUPPORTED_SCOPES, form=request.form)


# --- contracts -------------------------------------------------------------

@bp.route("/contracts", methods=["GET", "POST"])
@admin_required
def contracts():
    found, preview, errors, text = None, None, None, ""
    number = request.args.get("customer_number", "").strip()
    if number:
        found = db.session.scalar(db.select(Contract).filter_by(customer_number=number))
    if request.method == "POST":
        upload = request.files.get("csv")
        text = (upload.read().decode("utf-8-sig", errors="replace") if upload else request.form.get("csv_text", ""))
        try:
            rows = parse_csv(text)
        except ContractImportError as error:
            errors = [words.import_problem(problem) for problem in error.problems]
        else:
            if request.form.get("confirm"):
                report = import_contracts(text)
                record("admin.contracts_imported", created=report.created, updated=report.updated)
                db.session.commit()
                flash(f"{report.created}件を新規登録、{report.updated}件を更新しました。")
                return redirect(url_for("admin.contracts"), 303)
            existing = set(db.session.scalars(db.select(Contract.customer_number).where(
                Contract.customer_number.in_([r["customer_number"] for r in rows]))))
            preview = {"new": [r for r in rows if r["customer_number"] not in existing],
                       "updated": [r for r in rows if r["customer_number"] in existing]}
    return render_template("admin/contracts.html", found=found, number=number, preview=preview, errors=errors,
                           text=text)


# --- accounts --------------------------------------------------------------

@bp.route("/accounts")
@admin_required
def accounts():
    query = request.args.get("q", "").strip()
    account = None
    if query:
        account = db.session.scalar(
            db.select(Account).join(Account.contract).where(
                (Account.login_id == query.lower()) | (Contract.customer_number == query)))
    return render_template("admin/accounts.html", query=query, account=account)


@bp.route("/accounts/<int:account_id>/lock", methods=["POST"])
@admin_required
def account_lock(account_id):
    account = db.session.get(Account, account_id) or abort(404)
    locked = account.status != "locked"  # the one button locks and unlocks
    account.status = "locked" if locked else "active"
    if locked:
        end_everything(account, now())
    record("admin.account_locked" if locked else "admin.account_unlocked", account_id=account_id)
    db.session.commit()
    return redirect(url_for("admin.accounts", q=account.login_id), 303)


@bp.route("/accounts/<int:account_id>/revoke", methods=["POST"])
@admin_required
def account_revoke(account_id):
    account = db.session.get(Account, account_id) or abort(404)
    end_everything(account, now())
    record("admin.account_revoked", account_id=account_id)
    db.session.commit()
    flash("すべてのセッションとトークンを無効にしました。")
    return redirect(url_for("admin.accounts", q=account.login_id), 303)


# --- keys ------------------------------------------------------------------

@bp.route("/keys", methods=["GET", "POST"])
@admin_required
def signing_keys():
    if request.method == "POST":
        alg = request.form.get("alg")
        if alg not in keys.SUPPORTED_ALGS:
            abort(400)
        row = keys.rotate(alg)
        record("key.rotated", kid=row.kid, alg=alg)
        db.session.commit()
        delay = retry_after_text(current_app.config["KEY_PUBLISH_DELAY"])
        flash(f"{alg} の新しい署名鍵を追加し、公開しました。{delay}から署名に使います。")
        return redirect(url_for("admin.signing_keys"), 303)
    t = now()
    rows = [(k, keys.state(k, t)) for k in db.session.scalars(db.select(SigningKey).order_by(SigningKey.id))]
    return render_template("admin/keys.html", rows=rows, algs=keys.SUPPORTED_ALGS)


# --- audit log -------------------------------------------------------------

@bp.route("/audit")
@admin_required
def audit_log():
    """Filtered by event, account, client and a period given as date and time in Japan time."""
    args = request.args
    query = db.select(AuditEvent)
    if args.get("event"):
        query = query.where(AuditEvent.event == args["event"])
    if DIGITS.fullmatch(args.get("account_id", "")):
        query = query.where(AuditEvent.account_id == int(args["account_id"]))
    if args.get("client_id"):
        query = query.where(AuditEvent.client_id == args["client_id"])
    try:
        since = _japan_time(args.get("since_date", ""), args.get("since_time", ""), end_of_day=False)
        until = _japan_time(args.get("until_date", ""), args.get("until_time", ""), end_of_day=True)
    except (ValueError, OverflowError):
        return render_template("admin/audit.html", rows=[], page=1, more=False, args=args,
                               error="日付は「2026-01-31」、時刻は「09:30」の形式で入力してください。"), 400
    if since is not None:
        query = query.where(AuditEvent.created_at >= since)
    if until is not None:
        query = query.where(AuditEvent.created_at < until)
    page = max(1, int(args["page"])) if DIGITS.fullmatch(args.get("page", "")) else 1
    rows = db.session.scalars(query.order_by(AuditEvent.id.desc()).offset((page - 1) * PAGE_SIZE)
                              .limit(PAGE_SIZE + 1)).all()
    return render_template("admin/audit.html", rows=rows[:PAGE_SIZE], page=page, more=len(rows) > PAGE_SIZE,
                           args=args, error=None)


def _japan_time(day: str, clock: str, end_of_day: bool) -> int | None:
    """Epoch seconds of a date (YYYY-MM-DD) and optional time (HH:MM) in Japan
    time; None without a date. Without a time, a period starts at the start
    of its first day and ends with the end of its last; with one, it ends at
    the end of that minute. ValueError when malformed."""
    if not day.strip():
        if clock.strip():
            raise ValueError("a time without a date")
        return None
    moment = datetime.combine(date.fromisoformat(day.strip()),
                              time.fromisoformat(clock.strip()) if clock.strip() else time(0), JAPAN)
    if end_of_day:
        moment += timedelta(minutes=1) if clock.strip() else timedelta(days=1)
    return int(moment.timestamp())
