"""iTSCOM ID・パスワードが分からなくなったら (manual p.17–24), one view per
screen, in the manual's order.

The browser that starts a procedure keeps ``recovery`` = {id, binding} in
its session; 3-B's code and both password pages require it. 3-A's mailed
link may be opened anywhere (mail is often read on a phone): there the
secret question and answer bind the link to its starter, and a right
answer leaves ``recovery_link`` in that browser's session.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_babel import gettext, ngettext

from .. import audit
from ..accounts import SECRET_QUESTIONS, answer_problems
from ..extensions import db
from ..forms import NewPasswordForm, SecretForm
from ..security import devices
from ..security.throttle import Throttled, retry_after_header, retry_after_text
from . import service
from .forms import ChoiceForm, CodeForm, IdentifyForm
from .service import RecoveryError, TriesUsedUp

bp = Blueprint("recovery", __name__, url_prefix="/recovery")


@bp.route("/", methods=["GET", "POST"])
def choose(_form_class=ChoiceForm):
    """Step 2 of p.17, which is step 1 of パスワードを再発行したい (p.18):
    iTSCOM ID・パスワードがご不明なお客様 — choose what is unknown, 次へ."""
    form = _form_class()
    if form.validate_on_submit():
        if form.unknown.data == "id":
            return redirect(url_for("registration.verify"), 303)  # p.24: register again
        return redirect(url_for(".identify"), 303)
    return render_template("recovery/choose.html", form=form)


@bp.route("/identify", methods=["GET", "POST"])
def identify(_form_class=IdentifyForm):
    """Step 2 of パスワードを再発行したい (p.18): 本人認証 — enter the iTSCOM ID, 次へ;
    then 3-A or 3-B, whichever the account can do."""
    form = _form_class()
    error, status, wait = None, 200, 0
    if form.validate_on_submit():
        try:
            started = service.start(form.login_id.data, request.remote_addr, request.cookies.get(devices.COOKIE))
        except Throttled as refused:
            db.session.commit()  # the refusal is audited
            wait, status = refused.retry_after, 429
            error = gettext("お手続きの回数が上限に達しました。%(wait)sに再度お試しください。", wait=retry_after_text(wait))
        else:
            db.session.commit()
            session["recovery"] = {"id": started.procedure.id, "binding": started.binding}
            session.pop("recovery_link", None)
            return redirect(url_for(_next_step(started.procedure)), 303)
    html = render_template("recovery/identify.html", form=form, error=error, throttled=bool(wait))
    return html, status, retry_after_header(wait)


@bp.route("/code", methods=["GET", "POST"])
def code(_form_class=CodeForm):
    """3-B-1 (p.22): 認証コード入力."""
    try:
        procedure = _bound("code")
    except RecoveryError as error:
        return _restart(error)
    form = _form_class()
    if form.validate_on_submit():
        try:
            right = service.check_code(procedure, form.code.data)
        except RecoveryError as error:
            return _restart(error)
        db.session.commit()
        if right:
            return redirect(url_for(".password"), 303)
        left = service.tries_left(procedure)
        if not left:
            return _restart(TriesUsedUp("code"))
        form.code.errors.append(ngettext("認証コードが正しくありません。あと%(num)d回入力できます。",
                                         "認証コードが正しくありません。あと%(num)d回入力できます。", left))
    form.code.data = ""
    return render_template("recovery/code.html", form=form)


@bp.route("/password", methods=["GET", "POST"])
def password(_form_class=NewPasswordForm):
    """3-B-2 (p.23): the new パスワード and パスワード再入力, 次へ."""
    try:
        procedure = _bound("code")
    except RecoveryError as error:
        return _restart(error)
    if procedure.verified_at is None:
        return redirect(url_for(".code"))
    form = _form_class(for_login_id=procedure.account.login_id)
    if form.validate_on_submit():
        return _complete(procedure, form.password.data)
    form.password.data = form.password_confirm.data = ""  # never sent back
    return render_template("recovery/password.html", form=form, login_id=None)


@bp.route("/secret", methods=["GET", "POST"])
def secret(_form_class=SecretForm):
    """3-A-1 (p.19): 合言葉登録 — choose 秘密の質問, enter 答え, 次へ."""
    try:
        procedure = _bound("secret")
    except RecoveryError as error:
        return _restart(error)
    if procedure.link_digest is not None:
        return redirect(url_for(".secret_sent"))
    form = _form_class()
    if form.validate_on_submit():
        form.answer.errors.extend(answer_problems(form.answer.data))
        if not form.answer.errors:
            service.set_secret_and_mail_link(procedure, form.question.data, form.answer.data)
            db.session.commit()
            return redirect(url_for(".secret_sent"), 303)
    form.answer.data = ""
    return render_template("recovery/secret.html", form=form, questions=SECRET_QUESTIONS)


@bp.route("/secret/sent")
def secret_sent():
    """3-A-2 (p.20): 本人認証完了 — the confirmation mail is on its way."""
    try:
        procedure = _bound("secret")
    except RecoveryError as error:
        return _restart(error)
    if procedure.link_digest is None:
        return redirect(url_for(".secret"))
    return render_template("recovery/secret_sent.html")


@bp.route("/link/<token>", methods=["GET", "POST"])
def link(token: str, _form_class=SecretForm):
    """3-A-3/4 (p.20–21): the mailed URL asks 合言葉入力; ID・パスワード再発行 continues."""
    try:
        procedure = service.procedure_for_link(token)
    except RecoveryError as error:
        return _restart(error)
    form = _form_class()
    if form.validate_on_submit():
        try:
            right = service.check_secret(procedure, form.question.data, form.answer.data)
        except RecoveryError as error:
            return _restart(error)
        db.session.commit()
        if right:
            session["recovery_link"] = token
            return redirect(url_for(".reissue"), 303)
        left = service.tries_left(procedure)
        if not left:
            return _restart(TriesUsedUp("secret"))
        form.answer.errors.append(ngettext("秘密の質問または答えが正しくありません。あと%(num)d回入力できます。",
                                           "秘密の質問または答えが正しくありません。あと%(num)d回入力できます。", left))
    form.answer.data = ""
    return render_template("recovery/link.html", form=form, token=token)


@bp.route("/reissue", methods=["GET", "POST"])
def reissue(_form_class=NewPasswordForm):
    """3-A-4 (p.21): ID・パスワード再発行 — shows the iTSCOM ID, sets a new password."""
    try:
        procedure = service.procedure_for_link(session.get("recovery_link", ""))
    except RecoveryError as error:
        return _restart(error)
    if procedure.verified_at is None:
        return _restart()
    form = _form_class(for_login_id=procedure.account.login_id)
    if form.validate_on_submit():
        return _complete(procedure, form.password.data)
    form.password.data = form.password_confirm.data = ""  # never sent back
    return render_template("recovery/password.html", form=form, login_id=procedure.account.login_id)


@bp.route("/done")
def done():
    """3-B-3 (p.23): これでパスワードの再発行は完了です。"""
    if not session.get("recovery_done"):
        return redirect(url_for(".choose"))
    return render_template("recovery/done.html")


def _next_step(procedure) -> str:
    """After 本人認証 (p.18): 認証コード入力 (3-B), 合言葉登録 (3-A-1), or, when
    the account already has its 合言葉, straight to 本人認証完了 (3-A-2)."""
    if procedure.method == "code":
        return ".code"
    return ".secret_sent" if procedure.link_digest is not None else ".secret"


def _bound(method: str):
    state = session.get("recovery") or {}
    return service.bound_procedure(state.get("id"), state.get("binding"), method)


def _complete(procedure, password: str):
    try:
        service.complete(procedure, password)
    except RecoveryError as error:
        return _restart(error)
    db.session.commit()
    session.pop("recovery", None)
    session.pop("recovery_link", None)
    session["recovery_done"] = True
    return redirect(url_for(".done"), 303)


def _restart(error: RecoveryError | None = None):
    """Expired, used up, altered, or from another browser: start again (p.20,
    p.22). Spent tries say so, and what to do next."""
    error = error or RecoveryError()
    audit.record("recovery.refused", "failure", reason=error.reason)
    db.session.commit()
    return render_template("recovery/restart.html", reason=error.reason, method=error.method), 400
