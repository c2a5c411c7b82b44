"""アカウント設定: the signed-in customer's own settings (SPEC §3.4).

Every page needs an OP session; without one the customer signs in first
and comes back. Each change is its own POST, answered with 303.
"""

from __future__ import annotations

from functools import wraps

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext

from .. import language, passkeys, pending, second_factor
from ..accounts import SECRET_QUESTIONS, answer_problems
from ..extensions import db
from ..forms import ConfirmForm, FactorCodeForm
from ..security import devices
from ..security.credentials import login_id_problems
from ..security.throttle import Throttled, retry_after_text
from ..sessions import current_login_session
from . import service
from .forms import (ContactChangeForm, FactorSetupForm, PasskeyFactorForm, PasskeyForm, PasskeyNameForm,
                    PasswordChangeForm, SecretChangeForm)

bp = Blueprint("account_settings", __name__, url_prefix="/account")


def login_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        login_session = current_login_session(with_account=True)  # every page here shows or changes it
        if login_session is None:
            return redirect(pending.remember("account", url_for("account_settings.index")), 303)
        return view(login_session, *args, **kwargs)

    return wrapped


@bp.route("/")
@login_required
def index(login_session, password_form=None, contact_form=None, secret_form=None, renew_form=None, off_form=None,
          passkey_form=None, passkey_error=None, passkey_factor_form=None):
    account = login_session.account
    has_factor = second_factor.has_factor(account)
    return render_template(
        "account_settings/index.html",
        account=account,
        sessions=service.live_sessions(login_session),
        sites=service.connected_sites(account),
        passkeys=passkeys.passkeys_of(account),
        password_form=password_form or PasswordChangeForm(formdata=None),
        contact_form=contact_form or ContactChangeForm(formdata=None),
        secret_form=secret_form or SecretChangeForm(formdata=None),
        passkey_form=passkey_form or (PasskeyNameForm(formdata=None) if passkeys.available() else None),
        passkey_error=passkey_error,
        passkey_factor_form=passkey_factor_form or PasskeyFactorForm(formdata=None),
        has_totp=second_factor.totp_of(account) is not None,
        off_by_passkey=has_factor and passkeys.available() and bool(passkeys.passkeys_of(account)),
        questions=SECRET_QUESTIONS,
        button_form=ConfirmForm(),
        has_factor=has_factor,
        codes_left=second_factor.recovery_codes_left(account) if has_factor else 0,
        renew_form=renew_form or FactorCodeForm(formdata=None, prefix="renew"),
        off_form=off_form or FactorCodeForm(formdata=None, prefix="off"),
    )


@bp.route("/password", methods=["POST"])
@login_required
def password(login_session):
    """パスワード変更: the current password first, then the new one twice."""
    form = PasswordChangeForm(for_login_id=login_session.account.login_id)
    if form.validate_on_submit() and _reauthenticated(login_session, form):
        service.change_password(login_session, form.password.data)
        db.session.commit()
        flash(gettext("パスワードを変更しました。ほかの端末はログアウトしました。"))
        return redirect(url_for(".index"), 303)
    return index.__wrapped__(login_session, password_form=form), 400


@bp.route("/contact", methods=["POST"])
@login_required
def contact(login_session):
    """連絡先メールアドレス変更: a link to the new address confirms it."""
    form = ContactChangeForm()
    if form.validate_on_submit():
        address = form.contact_email.data.strip()
        what = gettext("連絡先メールアドレス")
        form.contact_email.errors.extend(p.replace("iTSCOM ID", what) for p in login_id_problems(address))
        if not form.contact_email.errors and _reauthenticated(login_session, form):
            service.start_contact_change(login_session.account, address)
            db.session.commit()
            flash(gettext("%(address)s に確認用メールを送信しました。メールに記載されたURLを開くと、連絡先メールアドレスの変更が完了します。",
                          address=address))
            return redirect(url_for(".index"), 303)
    return index.__wrapped__(login_session, contact_form=form), 400


@bp.route("/contact/<token>", methods=["GET", "POST"])
def contact_confirm(token: str):
    """The mailed link: a page whose button confirms (mail scanners open links)."""
    if request.method == "GET":
        if not service.contact_change_pending(token):
            return _link_expired()
        return render_template("account_settings/contact_confirm.html", form=ConfirmForm())
    account = service.confirm_contact_change(token)
    if account is None:
        return _link_expired()
    db.session.commit()
    return render_template("account_settings/contact_done.html", account=account)


def _link_expired():
    message = gettext("このURLは有効期限が切れているか、既に使用されています。お手数ですが、手続きをはじめからやり直してください。")
    return render_template("errors/error.html", message=message), 400


def _reauthenticated(login_session, form) -> bool:
    """The current password, asked before a change (throttled like a login)."""
    return _passed(form.current_password, gettext("現在のパスワードが正しくありません。"),
                   lambda: service.reauthenticate(login_session, form.current_password.data, request.remote_addr,
                                                  request.cookies.get(devices.COOKIE)))


def _factor_given(account, form) -> bool:
    """The second factor's code (or a recovery code), asked before changing the factor."""
    return _passed(form.code, gettext("確認コードが正しくありません。"),
                   lambda: second_factor.verify(account, form.code.data, request.remote_addr,
                                                request.cookies.get(devices.COOKIE)))


def _passed(field, wrong: str, check) -> bool:
    """Whether ``check`` passes; if not, ``field`` says why (``wrong``, or how
    long to wait when throttled), and the refusal's audit row is committed."""
    try:
        if check():
            return True
        message = wrong
    except Throttled as refused:
        message = gettext("しばらくしてから再度お試しください（%(wait)s）。", wait=retry_after_text(refused.retry_after))
    db.session.commit()  # the refusal is audited
    field.errors.append(message)
    return False


@bp.route("/secret", methods=["POST"])
@login_required
def secret(login_session):
    """合言葉: choose 秘密の質問 and its 答え."""
    form = SecretChangeForm()
    if form.validate_on_submit():
        form.answer.errors.extend(answer_problems(form.answer.data))
        if not form.answer.errors and _reauthenticated(login_session, form):
            service.set_secret(login_session.account, form.question.data, form.answer.data)
            db.session.commit()
            flash(gettext("合言葉を登録しました（秘密の質問: %(question)s）。", question=gettext(form.question.data)))
            return redirect(url_for(".index"), 303)
    return index.__wrapped__(login_session, secret_form=form), 400


@bp.route("/factor", methods=["GET", "POST"])
@login_required
def factor_setup(login_session):
    """2段階認証の設定: scan the QR code (or type the key) into an
    authenticator app, then confirm with its first code and the current
    password. The recovery codes follow, once."""
    account = login_session.account
    if second_factor.has_factor(account):
        return redirect(url_for(".index"), 303)
    secret = second_factor.enrolment_secret(account)
    form = FactorSetupForm()
    status = 200
    if form.validate_on_submit():
        if _reauthenticated(login_session, form):
            codes = second_factor.confirm_enrolment(account, form.code.data)
            if codes is not None:
                # The password and the code, just now: this session is worth mfa.
                second_factor.step_up(login_session, second_factor.WITH_CODE)
                second_factor.show_once(account, codes)
                db.session.commit()
                flash(gettext("2段階認証を設定しました。"))
                return redirect(url_for(".factor_codes"), 303)
            form.code.errors.append(gettext("確認コードが正しくありません。認証アプリに表示されている最新の確認コードを入力してください。"))
        status = 400
    elif request.method == "POST":
        status = 400
    form.code.data = ""
    uri = second_factor.enrolment_uri(account, secret)
    return render_template("account_settings/factor_setup.html", form=form, secret=secret,
                           qr_svg=service.qr_svg(uri), key_groups=[secret[i:i + 4] for i in range(0, len(secret), 4)]
                           ), status


@bp.route("/factor/codes", methods=["GET", "POST"])
@login_required
def factor_codes(login_session):
    """リカバリーコード: shown once after they are made; POST makes a new
    set (the authenticator's code, or a recovery code, first)."""
    account = login_session.account
    if request.method == "POST":
        form = FactorCodeForm(prefix="renew")
        if form.validate_on_submit() and second_factor.has_factor(account) and _factor_given(account, form):
            second_factor.show_once(account, second_factor.renew_recovery_codes(account))
            db.session.commit()
            return redirect(url_for(".factor_codes"), 303)
        return index.__wrapped__(login_session, renew_form=form), 400
    codes = second_factor.take_shown(account)
    if not codes:
        return redirect(url_for(".index"), 303)
    return render_template("account_settings/factor_codes.html", codes=codes)


@bp.route("/factor/off", methods=["POST"])
@login_required
def factor_off(login_session):
    """2段階認証の解除: the authenticator's code, or a recovery code."""
    account = login_session.account
    form = FactorCodeForm(prefix="off")
    if form.validate_on_submit() and second_factor.has_factor(account) and _factor_given(account, form):
        second_factor.turn_off(account)
        db.session.commit()
        flash(gettext("2段階認証を解除しました。"))
        return redirect(url_for(".index"), 303)
    return index.__wrapped__(login_session, off_form=form), 400


@bp.route("/factor/passkey", methods=["POST"])
@login_required
def factor_passkey_on(login_session):
    """2段階認証（パスキー）を設定する: with a passkey registered, the current
    password turns it on; recovery codes follow, once (unless the
    authenticator app's are already there)."""
    account = login_session.account
    form = PasskeyFactorForm()
    if account.passkey_factor:
        return redirect(url_for(".index"), 303)
    if not second_factor.has_passkey(account):
        return index.__wrapped__(login_session, passkey_error=gettext("先にパスキーを登録してください。")), 400
    if form.validate_on_submit() and _reauthenticated(login_session, form):
        codes = second_factor.turn_on_passkey(account)
        db.session.commit()
        flash(gettext("2段階認証（パスキー）を設定しました。"))
        if codes:
            second_factor.show_once(account, codes)
            return redirect(url_for(".factor_codes"), 303)
        return redirect(url_for(".index"), 303)
    return index.__wrapped__(login_session, passkey_factor_form=form), 400


@bp.route("/factor/off/passkey/options", methods=["POST"])
@login_required
def factor_off_passkey_options(login_session):
    """2段階認証の解除 with a passkey, first half: a challenge for this account's passkeys."""
    if not second_factor.has_factor(login_session.account):
        return Response(status=400)
    return Response(passkeys.factor_options(login_session.account), mimetype="application/json")


@bp.route("/factor/off/passkey", methods=["POST"])
@login_required
def factor_off_passkey(login_session):
    """2段階認証の解除 with a passkey, second half: one of the account's
    passkeys, verified (throttled like a code), turns the factor off."""
    account = login_session.account
    form = PasskeyForm()
    off_form = FactorCodeForm(formdata=None, prefix="off")
    if form.validate_on_submit() and second_factor.has_factor(account):
        try:
            if passkeys.confirm_factor(account, form.credential.data, request.remote_addr,
                                       request.cookies.get(devices.COOKIE)):
                second_factor.turn_off(account)
                db.session.commit()
                flash(gettext("2段階認証を解除しました。"))
                return redirect(url_for(".index"), 303)
            off_form.code.errors = [gettext("パスキーで確認できませんでした。もう一度お試しいただくか、確認コードを入力してください。")]
        except Throttled as refused:
            off_form.code.errors = [gettext("しばらくしてから再度お試しください（%(wait)s）。",
                                            wait=retry_after_text(refused.retry_after))]
        db.session.commit()  # the refusal is audited
    return index.__wrapped__(login_session, off_form=off_form), 400


@bp.route("/passkeys/new", methods=["POST"])
@login_required
def passkey_new(login_session):
    """パスキーを登録する: its name and the current password; then a page whose
    button has the browser make the passkey (passkey.js)."""
    form = PasskeyNameForm()
    if form.validate_on_submit() and _reauthenticated(login_session, form):
        options = passkeys.registration_options(login_session, form.name.data.strip())
        return render_template("account_settings/passkey_new.html", options=options, name=form.name.data.strip(),
                               form=PasskeyForm(formdata=None))
    return index.__wrapped__(login_session, passkey_form=form), 400


@bp.route("/passkeys", methods=["POST"])
@login_required
def passkey_add(login_session):
    """The passkey the browser made: checked against this enrolment, stored, mailed about."""
    form = PasskeyForm()
    passkey = passkeys.enrol(login_session, form.credential.data) if form.validate_on_submit() else None
    db.session.commit()  # the passkey and its audit row, or the refusal's
    if passkey is None:
        return index.__wrapped__(login_session, passkey_error=gettext(
            "パスキーを登録できませんでした。お手数ですが、もう一度お試しください。")), 400
    flash(gettext("パスキー「%(name)s」を登録しました。", name=passkey.name))
    return redirect(url_for(".index"), 303)


@bp.route("/passkeys/<int:passkey_id>/remove", methods=["POST"])
@login_required
def passkey_remove(login_session, passkey_id: int):
    """パスキー: remove one; the contact address is told. While 2段階認証
    （パスキー） is on, the last passkey stays: the customer turns the factor
    off first (a recovery code, or that passkey), so that the factor is
    never left without its key."""
    account = login_session.account
    if account.passkey_factor and [p.id for p in passkeys.passkeys_of(account)] == [passkey_id]:
        flash(gettext("2段階認証（パスキー）を設定しているため、最後のパスキーは削除できません。先に2段階認証を解除してください。"))
        return redirect(url_for(".index"), 303)
    passkey = passkeys.remove(account, passkey_id)
    db.session.commit()
    flash(gettext("パスキー「%(name)s」を削除しました。", name=passkey.name) if passkey
          else gettext("そのパスキーは既に削除されています。"))
    return redirect(url_for(".index"), 303)


@bp.route("/sessions/<sid>/end", methods=["POST"])
@login_required
def end_session(login_session, sid: str):
    """ログイン中の端末: end one session (this one included)."""
    ended = service.end_session(login_session.account, sid)
    db.session.commit()
    if sid == login_session.sid:
        flash(gettext("この端末からログアウトしました。"))
        return redirect(url_for("login.login"), 303)
    if ended is None:
        flash(gettext("その端末は既にログアウトしています。"))
    else:
        flash(gettext("%(device)s の端末をログアウトさせました。", device=ended.device.label))
    return redirect(url_for(".index"), 303)


@bp.route("/sites/<client_id>/revoke", methods=["POST"])
@login_required
def revoke_site(login_session, client_id: str):
    """連携サイト: forget consent and revoke tokens of one site."""
    client = service.revoke_site(login_session.account, client_id)
    db.session.commit()
    flash(gettext("「%(site)s」との連携を解除しました。", site=client.name_in(language.current())) if client
          else gettext("そのサイトとは連携していません。"))
    return redirect(url_for(".index"), 303)
