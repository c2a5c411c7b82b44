"""マイページにログインしよう (manual p.2–3): the login page."""

from flask import (
    Blueprint,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from ..extensions import db
from ..security import devices
from ..security.throttle import retry_after_header, retry_after_text
from .forms import ConfirmForm, LoginForm
from .service import authenticate
from .sessions import current_login_session, start_login_session

bp = Blueprint("login", __name__)

# Flow state that survives the session reset at login.
FLOW_KEYS = ("login_next", "reauth_pending")


@bp.route("/login", methods=["GET", "POST"])
def login(_form_class=LoginForm):
    """p.2 (1)–(3): enter the iTSCOM ID and password, press ログイン."""
    form = _form_class()
    error, status, wait = None, 200, 0
    if request.method == "GET" and not form.login_id.data:
        form.login_id.data = session.get("login_hint", "")
    if form.validate_on_submit():
        result = authenticate(form.login_id.data, form.password.data, request.remote_addr,
                              request.cookies.get(devices.COOKIE))
        if result.account is not None:
            reauth = session.get("reauth_pending")
            start_login_session(result.account, keep=FLOW_KEYS)
            if reauth:
                session["reauth_done"] = session.pop("reauth_pending")
            db.session.commit()
            response = redirect(session.pop("login_next", None) or url_for("login.home"), 303)
            devices.set_cookie(response, result.device_cookie)
            return response
        db.session.commit()
        wait = result.retry_after
        if wait:
            error, status = f"ログインの試行回数が上限を超えました。{retry_after_text(wait)}に再度お試しください。", 429
        else:
            error = "iTSCOM IDまたはパスワードが正しくありません。"
    form.password.data = ""
    html = render_template("login/login.html", form=form, error=error, qr_svg=_qr_svg())
    return html, status, retry_after_header(wait)


@bp.route("/")
def home():
    """Where a customer lands after signing in directly at the OP."""
    login_session = current_login_session()
    if login_session is None:
        return redirect(url_for("login.login"))
    return render_template("login/home.html", account=login_session.account, form=ConfirmForm())


def _qr_svg() -> str:
    """The QR code of My Page's address, rendered once per process."""
    cache = current_app.extensions["idp.qr"]
    if "svg" not in cache:
        import io

        import segno

        buffer = io.BytesIO()
        segno.make(current_app.config["MYPAGE_URL"], error="m").save(
            buffer, kind="svg", scale=4, xmldecl=False, svgns=True, title="マイページのQRコード"
        )
        cache["svg"] = buffer.getvalue().decode()
    return cache["svg"]
