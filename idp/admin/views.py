"""管理コンソール (/admin): what operators do, each action audited.

An administrator signs in with username, password and a TOTP code; the
admin session is separate from any customer's OP session and ends after
IDP_ADMIN_IDLE_TIMEOUT seconds without a request. Every form is a POST with
a CSRF token, answered with 303. Views parse a form, call the service and
commit (idp.audit).
"""

from __future__ import annotations

import re
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

from .. import second_factor
from ..clients import ClientError
from ..contracts import ContractImportError, parse_csv
from ..extensions import db
from ..security.clock import now
from ..security.throttle import Throttled, retry_after_header, retry_after_text
from . import service, words
from .forms import (
    AccountSearchForm,
    AuditFilterForm,
    ClientForm,
    ContractSearchForm,
    FactorResetForm,
    ImportForm,
    KeyRotationForm,
    LoginForm,
)

bp = Blueprint("admin", __name__, url_prefix="/admin")
DIGITS = re.compile(r"[0-9]{1,12}")
SESSION_KEYS = ("admin_id", "admin_nonce", "admin_seen", "admin_since")


@bp.context_processor
def _words():
    return {"words": words}


def admin_required(view):
    """A live console session (service.live_admin), or the login page; the
    view gets the administrator it acts for."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        t = now()
        admin = service.live_admin(session, t)
        if admin is None:
            for key in SESSION_KEYS:
                session.pop(key, None)
            return redirect(url_for("admin.login"), 303)
        session["admin_seen"] = t
        return view(admin, *args, **kwargs)

    return wrapped


@bp.route("/login", methods=["GET", "POST"])
def login(_form_class=LoginForm):
    form = _form_class()
    error, status, wait = None, 200, 0
    if form.validate_on_submit():
        try:
            result = service.sign_in(form.username.data or "", form.password.data or "", form.code.data or "",
                                     request.remote_addr)
        except Throttled as refused:
            wait, status = refused.retry_after, 429
            error = f"しばらくしてから再度お試しください（{retry_after_text(wait)}）。"
        else:
            if result.admin is not None:
                session.clear()  # a fresh session: no fixation, nothing of a customer's flow
                session.update(admin_id=result.admin.id, admin_nonce=result.nonce, admin_seen=now(),
                               admin_since=now())
                return redirect(url_for("admin.index"), 303)
            error, status = "ユーザー名、パスワードまたは確認コードが正しくありません。", 401
    form.code.data = ""  # a code works once
    return render_template("admin/login.html", form=form, error=error), status, retry_after_header(wait)


@bp.route("/logout", methods=["POST"])
def logout():
    service.sign_out(session)
    db.session.commit()
    session.clear()
    return redirect(url_for("admin.login"), 303)


@bp.route("/")
@admin_required
def index(admin):
    return render_template("admin/index.html")


# --- clients ---------------------------------------------------------------

@bp.route("/clients")
@admin_required
def clients(admin):
    return render_template("admin/clients.html", clients=service.all_clients())


@bp.route("/clients/new", methods=["GET", "POST"])
@admin_required
def client_new(admin, _form_class=ClientForm):
    form = _form_class() if request.method == "POST" else _form_class(data=_form_class.initial(None))
    if form.validate_on_submit():
        try:
            client, secret = service.register_client(admin, form.metadata(), form.first_party.data)
        except ClientError as error:
            form.refuse(error)
        else:
            db.session.commit()
            return render_template("admin/client_secret.html", client=client, secret=secret)
    return render_template("admin/client_form.html", client=None, form=form), 400 if form.errors else 200


@bp.route("/clients/<client_id>", methods=["GET", "POST"])
@admin_required
def client_edit(admin, client_id, _form_class=ClientForm):
    client = _client(client_id)
    form = _form_class() if request.method == "POST" else _form_class(data=_form_class.initial(client))
    if form.validate_on_submit():
        try:
            secret = service.change_client(admin, client, form.metadata(), form.first_party.data)
        except ClientError as error:
            form.refuse(error)
        else:
            db.session.commit()
            if secret:
                return render_template("admin/client_secret.html", client=client, secret=secret)
            flash("保存しました。")
            return redirect(url_for("admin.client_edit", client_id=client_id), 303)
    return render_template("admin/client_form.html", client=client, form=form), 400 if form.errors else 200


@bp.route("/clients/<client_id>/rotate-secret", methods=["POST"])
@admin_required
def client_rotate(admin, client_id):
    client = _client(client_id)
    try:
        secret = service.rotate_client_secret(admin, client)
    except ClientError as error:
        flash(words.client_error(error))
        return redirect(url_for("admin.client_edit", client_id=client_id), 303)
    db.session.commit()
    return render_template("admin/client_secret.html", client=client, secret=secret)


@bp.route("/clients/<client_id>/disable", methods=["POST"])
@admin_required
def client_disable(admin, client_id):
    service.toggle_client(admin, _client(client_id))
    db.session.commit()
    return redirect(url_for("admin.client_edit", client_id=client_id), 303)


@bp.route("/clients/<client_id>/delete", methods=["POST"])
@admin_required
def client_delete(admin, client_id):
    service.delete_client(admin, _client(client_id))
    db.session.commit()
    flash("削除しました。")
    return redirect(url_for("admin.clients"), 303)


def _client(client_id: str):
    return service.find_client(client_id) or abort(404)


# --- contracts -------------------------------------------------------------

@bp.route("/contracts", methods=["GET", "POST"])
@admin_required
def contracts(admin, _form_class=ImportForm):
    """Look a contract up; import a billing CSV: check it, see what it
    changes, then import it."""
    search = ContractSearchForm(request.args)
    number = search.customer_number.data
    found = service.find_contract(number) if number else None
    form = _form_class()
    preview, problems = None, None
    if form.validate_on_submit():
        text = form.text()
        try:
            rows = parse_csv(text)
        except ContractImportError as error:
            problems = [words.import_problem(problem) for problem in error.problems]
        else:
            if form.confirm.data:
                report = service.import_contracts(admin, rows)
                db.session.commit()
                flash(f"{report.created}件を新規登録、{report.updated}件を更新しました。")
                return redirect(url_for("admin.contracts"), 303)
            preview = service.preview_import(rows)
            form.csv_text.data = text
    return render_template("admin/contracts.html", search=search, found=found, form=form, preview=preview,
                           problems=problems)


# --- accounts --------------------------------------------------------------

@bp.route("/accounts")
@admin_required
def accounts(admin):
    search = AccountSearchForm(request.args)
    query = search.q.data
    account = service.find_account(query) if query else None
    has_factor = account is not None and second_factor.has_factor(account)
    return render_template("admin/accounts.html", search=search, account=account, has_factor=has_factor)


@bp.route("/accounts/<int:account_id>/lock", methods=["POST"])
@admin_required
def account_lock(admin, account_id):
    account = _account(account_id)
    service.toggle_lock(admin, account)
    db.session.commit()
    return redirect(url_for("admin.accounts", q=account.login_id), 303)


@bp.route("/accounts/<int:account_id>/revoke", methods=["POST"])
@admin_required
def account_revoke(admin, account_id):
    account = _account(account_id)
    service.end_sessions(admin, account)
    db.session.commit()
    flash("すべてのセッションとトークンを無効にしました。")
    return redirect(url_for("admin.accounts", q=account.login_id), 303)


@bp.route("/accounts/<int:account_id>/second-factor", methods=["GET", "POST"])
@admin_required
def account_factor_reset(admin, account_id, _form_class=FactorResetForm):
    """2段階認証のリセット: a confirmation page, then the reset (audited, mailed)."""
    account = _account(account_id)
    form = _form_class()
    if form.validate_on_submit():
        if service.reset_second_factor(admin, account):
            db.session.commit()
            flash("2段階認証をリセットしました。お客さまに通知メールを送信しました。")
        else:
            flash("このiTSCOM IDには2段階認証が設定されていません。")
        return redirect(url_for("admin.accounts", q=account.login_id), 303)
    return render_template("admin/factor_reset.html", account=account, form=form), 400 if form.is_submitted() else 200


def _account(account_id: int):
    return service.find_account_by_id(account_id) or abort(404)


# --- keys ------------------------------------------------------------------

@bp.route("/keys", methods=["GET", "POST"])
@admin_required
def signing_keys(admin, _form_class=KeyRotationForm):
    form = _form_class()
    if request.method == "POST":
        if not form.validate():
            abort(400)
        service.rotate_key(admin, form.alg.data)
        db.session.commit()
        delay = retry_after_text(current_app.config["KEY_PUBLISH_DELAY"])
        flash(f"{form.alg.data} の新しい署名鍵を追加し、公開しました。{delay}から署名に使います。")
        return redirect(url_for("admin.signing_keys"), 303)
    return render_template("admin/keys.html", rows=service.signing_keys(now()), form=form)


# --- audit log -------------------------------------------------------------

@bp.route("/audit")
@admin_required
def audit_log(admin):
    """Filtered by event, account, client and a period given as date and time in Japan time."""
    form = AuditFilterForm(request.args)
    page = max(1, int(request.args["page"])) if DIGITS.fullmatch(request.args.get("page", "")) else 1
    if not form.validate():
        return render_template("admin/audit.html", form=form, rows=[], page=1, more=False), 400
    rows, more = service.audit_events(form.filter(), page)
    return render_template("admin/audit.html", form=form, rows=rows, page=page, more=more)
