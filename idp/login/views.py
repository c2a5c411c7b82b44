"""マイページにログインしよう (manual p.2–3): the login page."""

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext

from .. import language, passkeys, pending, second_factor
from ..accounts import LoginResult, authenticate
from ..extensions import db
from ..forms import FactorCodeForm
from ..models import Client
from ..security import devices, totp
from ..security.throttle import Throttled, retry_after_header, retry_after_text
from ..sessions import current_login_session, start_login_session
from .forms import LoginForm, PasskeyLoginForm

bp = Blueprint("login", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login(_form_class=LoginForm):
    """p.2 (1)–(3): enter the iTSCOM ID and password, press ログイン.

    ``?request=`` names the sign-in a site asked for (pending.py): the page
    names that site, and the login continues there; without one, at the
    home site."""
    key = request.args.get("request")
    waiting = pending.find(key)
    form = _form_class()
    error, status, wait = None, 200, 0
    if request.method == "GET" and not form.login_id.data and waiting:
        form.login_id.data = waiting.get("hint") or ""
    if form.validate_on_submit():
        result, error, status, wait = _checked(
            lambda: authenticate(form.login_id.data, form.password.data, request.remote_addr,
                                 request.cookies.get(devices.COOKIE)),
            gettext("iTSCOM IDまたはパスワードが正しくありません。"), 200)
        if result is not None and result.needs_factor:
            return _ask_factor(result, key)
        if result is not None:
            return _signed_in(result.account, key, result.device_cookie)
        db.session.commit()  # the refusal is audited
    return _login_page(form, key, waiting, error, status, wait)


@bp.route("/login/passkey/options", methods=["POST"])
def passkey_options():
    """パスキーでログイン, first half: a challenge for this browser, as the
    options of navigator.credentials.get() (login.js asks on page load for
    the iTSCOM ID field's autofill, and again for the button)."""
    return Response(passkeys.authentication_options(), mimetype="application/json")


@bp.route("/login/passkey", methods=["POST"])
def passkey_login(_form_class=PasskeyLoginForm):
    """パスキーでログイン, second half: the passkey's answer, checked; a right
    one is a login like the password's and continues where it would."""
    key = request.args.get("request")
    form = _form_class()
    failed = gettext("パスキーでログインできませんでした。もう一度お試しいただくか、iTSCOM IDとパスワードでログインしてください。")
    error, status, wait = failed, 400, 0
    if form.validate_on_submit():
        result, error, status, wait = _checked(
            lambda: passkeys.sign_in(form.credential.data, request.remote_addr, request.cookies.get(devices.COOKIE)),
            failed, 400)
        if result is not None:
            # A passkey with user verification is two factors in one (a
            # device and its PIN or biometric): no second factor is asked.
            return _signed_in(result.account, key, result.device_cookie, (*result.amr, "mfa"))
        db.session.commit()  # the refusal is audited
    return _login_page(LoginForm(formdata=None), key, pending.find(key), error, status, wait)


def _checked(check, failed: str, failed_status: int) -> tuple[LoginResult | None, str | None, int, int]:
    """Run a login's check (password or passkey): (its result, None, 200, 0)
    when it opened an account, else (None, what the page says, the status,
    seconds to wait)."""
    try:
        result = check()
    except Throttled as refused:
        return None, gettext("ログインの試行回数が上限を超えました。%(wait)sに再度お試しください。",
                             wait=retry_after_text(refused.retry_after)), 429, refused.retry_after
    if result.account is None:
        return None, failed, failed_status, 0
    return result, None, 200, 0


def _login_page(form, key: str | None, waiting: dict | None, error: str | None, status: int, wait: int):
    form.password.data = ""
    html = render_template("login/login.html", form=form, error=error, qr_svg=_qr_svg(),
                           action=url_for("login.login", request=key),
                           passkey_action=url_for("login.passkey_login", request=key),
                           passkey_form=PasskeyLoginForm(formdata=None) if passkeys.available() else None,
                           site=_asking_site(waiting))
    return html, status, retry_after_header(wait)


def _signed_in(account, key: str | None, device_cookie: str | None,
               methods: tuple[str, ...] = second_factor.PASSWORD):
    """A right ID and password (and factor): a new OP session, then on to
    the site that asked, or to the home site."""
    # The language this login was made in is the customer's (the locale
    # claim), until they pick another; asked before the sign-in it may
    # come from is taken.
    account.locale = language.current()
    waiting = pending.take(key)
    start_login_session(account, keep=pending.FLOW_KEYS, methods=methods)
    if waiting and waiting.get("reauth"):
        # This login satisfies prompt=login and max_age for that request.
        session["reauth_done"] = waiting["reauth"]
    db.session.commit()
    response = redirect(waiting["next"] if waiting else current_app.config["HOME_URL"], 303)
    if device_cookie:
        devices.set_cookie(response, device_cookie)
    return response


def _ask_factor(result, key: str | None):
    """A right password of an account with a second factor: no session yet;
    the sign-in waits (second_factor.hold) for the factor's page."""
    second_factor.hold(result.account, key, device_cookie=result.device_cookie)
    db.session.commit()  # the password's success is audited
    return redirect(url_for("login.factor", request=key), 303)


def _held_sign_in():
    """The sign-in waiting in this browser for its factor: (the held state,
    its account, the session stepping up or None); the account is None
    when nothing (valid) waits."""
    held = second_factor.held()
    account = second_factor.held_account(held) if held else None
    step_up = None
    if held is not None and held.step_up_sid:
        step_up = current_login_session()
        if step_up is None or step_up.sid != held.step_up_sid:
            account = None
    return held, account, step_up


def _factor_expired(key: str | None):
    second_factor.drop_held()
    return render_template("login/factor_expired.html", login_url=url_for("login.login", request=key)), 400


@bp.route("/login/factor", methods=["GET", "POST"])
def factor(_form_class=FactorCodeForm, *, passkey_error: str | None = None, passkey_wait: int = 0):
    """2段階認証: after a right password (or for a site that asks for more
    than this session's password), the authenticator's code, a recovery
    code, or (パスキーで確認) one of the account's passkeys. Throttled like
    the password."""
    key = request.args.get("request")
    held, account, step_up = _held_sign_in()
    if account is None:
        return _factor_expired(key)
    form = _form_class() if passkey_error is None else _form_class(formdata=None)
    error, status, wait = passkey_error, 400 if passkey_error else 200, passkey_wait
    if passkey_wait:
        status = 429
    if passkey_error is None and form.validate_on_submit():
        try:
            kind = second_factor.verify(account, form.code.data, request.remote_addr,
                                        request.cookies.get(devices.COOKIE))
        except Throttled as refused:
            wait, status = refused.retry_after, 429
            error = _factor_throttled(wait)
        else:
            if kind is not None:
                second_factor.drop_held()
                return _factor_given(account, held, step_up, second_factor.WITH_CODE)
            error, status = gettext("確認コードが正しくありません。"), 400
        db.session.commit()  # the refusal is audited
    form.code.data = ""
    offer_passkey = passkeys.available() and bool(passkeys.passkeys_of(account))
    html = render_template("login/factor.html", form=form, error=error, step_up=step_up is not None,
                           action=url_for("login.factor", request=key),
                           has_totp=second_factor.totp_of(account) is not None,
                           passkey_form=PasskeyLoginForm(formdata=None) if offer_passkey else None,
                           passkey_action=url_for("login.factor_passkey", request=key),
                           login_url=url_for("login.login", request=key))
    return html, status, retry_after_header(wait)


@bp.route("/login/factor/passkey/options", methods=["POST"])
def factor_passkey_options():
    """パスキーで確認, first half: a challenge for the held account's passkeys."""
    _, account, _ = _held_sign_in()
    if account is None:
        abort(400)
    return Response(passkeys.factor_options(account), mimetype="application/json")


@bp.route("/login/factor/passkey", methods=["POST"])
def factor_passkey(_form_class=PasskeyLoginForm):
    """パスキーで確認, second half: a passkey of the held account, verified,
    gives the factor; a wrong answer shows the factor page again."""
    key = request.args.get("request")
    held, account, step_up = _held_sign_in()
    if account is None:
        return _factor_expired(key)
    form = _form_class()
    failed = gettext("パスキーで確認できませんでした。もう一度お試しいただくか、確認コードを入力してください。")
    if not form.validate_on_submit():
        return factor(passkey_error=failed)
    try:
        methods = passkeys.confirm_factor(account, form.credential.data, request.remote_addr,
                                          request.cookies.get(devices.COOKIE))
    except Throttled as refused:
        db.session.commit()  # the refusal is audited
        return factor(passkey_error=_factor_throttled(refused.retry_after, by_passkey=True),
                      passkey_wait=refused.retry_after)
    if methods is None or second_factor.satisfied_by_passkey(account.id) is None:
        db.session.commit()  # the refusal is audited
        return factor(passkey_error=failed)
    return _factor_given(account, held, step_up, (*methods, "mfa"))


def _factor_throttled(wait: int, by_passkey: bool = False) -> str:
    """What the factor page says when the MFA budget (the code's and the
    passkey's alike) refuses a try: of what the customer just tried."""
    if by_passkey:
        return gettext("パスキーでの確認の試行回数が上限を超えました。%(wait)sに再度お試しください。",
                       wait=retry_after_text(wait))
    return gettext("確認コードの入力回数が上限を超えました。%(wait)sに再度お試しください。", wait=retry_after_text(wait))


def _factor_given(account, held, step_up, methods: tuple[str, ...]):
    """The factor was given (the held sign-in is taken): the login, or the
    step-up, finishes with its methods."""
    if step_up is not None:
        return _stepped_up(step_up, held.key, methods)
    return _signed_in(account, held.key, held.device_cookie, ("pwd", *methods) if "pwd" not in methods else methods)


def _stepped_up(login_session, key: str | None, methods: tuple[str, ...] = second_factor.WITH_CODE):
    """The session gave its factor: it is worth mfa now; on to the request."""
    second_factor.step_up(login_session, methods)
    waiting = pending.take(key)
    db.session.commit()
    return redirect(waiting["next"] if waiting else current_app.config["HOME_URL"], 303)


@bp.route("/language/<language_tag>")
def language_switch(language_tag: str):
    """Every page header's 「English」/「日本語」 link: remember the choice in
    this browser (and, signed in, on the iTSCOM ID: the locale claim), and
    show the same page again. Flow state lives in the session: untouched."""
    if language_tag not in language.LANGUAGES:
        abort(404)
    response = redirect(language.same_site_path(request.args.get("next")), 303)
    language.set_cookie(response, language_tag)
    login_session = current_login_session(with_account=True)
    if login_session is not None and login_session.account.locale != language_tag:
        login_session.account.locale = language_tag
        db.session.commit()
    return response


@bp.route("/")
def home():
    """The OP has no home page of its own: signed in, the customer goes on to
    the home site (My Page); otherwise to the login page."""
    if current_login_session() is None:
        return redirect(url_for("login.login"))
    return redirect(current_app.config["HOME_URL"])


def _asking_site(waiting: dict | None) -> str | None:
    """The registered name of the client whose request waits for this login,
    in the page's language when the client registered one (client_name#en)."""
    client = Client.lookup(waiting.get("client_id")) if waiting else None
    return client.name_in(language.current()) if client is not None else None


def _qr_svg() -> str:
    """The QR code of My Page's address, rendered once per app and language."""
    title = gettext("マイページのQRコード")

    def render() -> str:
        return totp.qr_svg(current_app.config["MYPAGE_URL"], title)

    return current_app.extensions["idp.qr"].get(title, render)
