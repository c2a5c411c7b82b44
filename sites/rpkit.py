"""What every iTSCOM relying party needs from the OP, in one blueprint.

- sign-in: Authlib's Flask OAuth client, code flow with PKCE (S256), state
  and nonce; the ID token is verified by Authlib (signature from the OP's
  JWKS, iss, aud, exp, nonce) and the authorization response's ``iss``
  (RFC 9207) is checked here;
- a local session per browser, kept server-side in the app's own SQLite
  database so that a back-channel logout can end it;
- logout through the OP's end_session_endpoint (id_token_hint, registered
  post_logout_redirect_uri, state);
- the back-channel logout endpoint (OIDC Back-Channel Logout 1.0);
- step-up (``step_up_required``): pages that lead to changes ask the OP
  again, with ``acr_values=urn:itscom:acr:mfa`` and ``max_age``, and are
  shown only while the ID token says the customer authenticated within
  STEP_UP_MAX_AGE seconds, with the second factor (acr mfa) or, for an
  iTSCOM ID without one, with the password asked for this step-up
  (acr_values are voluntary: the OP answers acr pwd then);
- the language of its pages, Japanese or English (Flask-Babel over
  sites/translations): the customer's choice with the header's
  「English」/「日本語」 link (a cookie of the site's own, sent on as
  ``ui_locales`` in the next authorization request so that the OP's pages
  follow), then the signed-in customer's ``locale`` claim (the language
  they use iTSCOM ID in), then Accept-Language, then Japanese.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from functools import wraps
from pathlib import Path

import requests
from authlib.integrations.flask_client import OAuth, OAuthError
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    send_from_directory,
    session,
    url_for,
)
from flask_babel import Babel, get_locale, gettext
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from markupsafe import Markup, escape

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
# The operator's contact page (<PREFIX>_CONTACT_URL), as the OP's IDP_CONTACT_URL.
DEFAULT_CONTACT_URL = "http://www.itscom.net/info/contact/index.html"
STATIC = Path(__file__).resolve().parent / "static"
TRANSLATIONS = Path(__file__).resolve().parent / "translations"
LANGUAGES = ("ja", "en")
LANGUAGE_COOKIE_MAX_AGE = 365 * 24 * 3600
ACR_MFA = "urn:itscom:acr:mfa"
DEFAULT_STEP_UP_MAX_AGE = 15 * 60

SESSION_SCHEMA = """
CREATE TABLE IF NOT EXISTS rp_sessions (
    id TEXT PRIMARY KEY,
    sid TEXT,
    sub TEXT NOT NULL,
    claims TEXT NOT NULL,
    id_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    ended_at INTEGER
);
CREATE INDEX IF NOT EXISTS rp_sessions_sid ON rp_sessions (sid);
CREATE TABLE IF NOT EXISTS rp_logout_jtis (jti TEXT PRIMARY KEY, seen_at INTEGER NOT NULL);
"""


def configure(app: Flask, prefix: str, scope: str, schema: str = "", overrides: dict | None = None) -> None:
    """Settings from ``<PREFIX>_*`` (then ``overrides``): ISSUER, CLIENT_ID,
    CLIENT_SECRET, SECRET_KEY, DATABASE; CONTACT_URL optional."""
    app.config["CONTACT_URL"] = DEFAULT_CONTACT_URL
    app.config["STEP_UP_MAX_AGE"] = DEFAULT_STEP_UP_MAX_AGE
    app.config.from_prefixed_env(prefix)
    app.config.update(overrides or {})
    missing = [k for k in ("ISSUER", "CLIENT_ID", "CLIENT_SECRET", "SECRET_KEY", "DATABASE") if not app.config.get(k)]
    if missing:
        raise SystemExit(f"{app.name}: set {', '.join(f'{prefix}_{k}' for k in missing)}")
    app.config.update(SESSION_COOKIE_NAME=f"{prefix.lower()}_session", LANGUAGE_COOKIE=f"{prefix.lower()}_lang",
                      SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=app.config["ISSUER"].startswith("https"))
    with sqlite3.connect(app.config["DATABASE"]) as conn:
        conn.executescript(SESSION_SCHEMA + schema)
    oauth = OAuth(app)
    oauth.register(
        name="op",
        client_id=app.config["CLIENT_ID"],
        client_secret=app.config["CLIENT_SECRET"],
        server_metadata_url=app.config["ISSUER"].rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs={"scope": scope, "code_challenge_method": "S256",
                       "token_endpoint_auth_method": "client_secret_basic"},
    )
    app.extensions["rp.oauth"] = oauth
    Babel(app, locale_selector=_select_language, default_locale="ja", default_translation_directories=str(TRANSLATIONS))
    app.add_template_filter(_in_japanese, "ja")
    app.add_template_filter(gettext, "translated")  # the site's own data, stored in Japanese
    app.register_blueprint(bp)
    app.teardown_appcontext(_close_db)
    app.after_request(_private_pages)

    @app.context_processor
    def _user():
        here = str(get_locale())
        other = "en" if here == "ja" else "ja"
        back = request.full_path.rstrip("?") if request.method == "GET" else "/"
        return {"user": current_user(), "form_token": session.get("form_token", ""), "page_language": here,
                "other_language": other, "other_language_url": url_for("rp.language", tag=other, next=back)}


def N_(text: str) -> str:
    """Marks a text for the catalog (pybabel extract) that is translated where it is shown."""
    return text


def _supported(tag: str | None) -> str | None:
    primary = (tag or "").split("-")[0].lower()
    return primary if primary in LANGUAGES else None


def chosen_language() -> str | None:
    """The language picked with this site's header link, if any."""
    return _supported(request.cookies.get(current_app.config["LANGUAGE_COOKIE"]))


def _select_language() -> str:
    user = current_user()
    return (chosen_language() or _supported(user and user.get("locale"))
            or request.accept_languages.best_match(LANGUAGES, default="ja"))


def _in_japanese(text) -> Markup:
    """Japanese data (the customer's name in kanji) on an English page: marked as such."""
    if str(get_locale()) == "ja":
        return escape(text)
    return Markup('<span lang="ja">%s</span>') % text


def _private_pages(response):
    """A relying party's pages show the customer's bills and contract: never cached."""
    if response.mimetype == "text/html":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def get_db() -> sqlite3.Connection:
    if "rp_db" not in g:
        g.rp_db = sqlite3.connect(current_app.config["DATABASE"])
        g.rp_db.row_factory = sqlite3.Row
    return g.rp_db


def current_user() -> dict | None:
    """The signed-in customer's claims, unless the OP ended the session."""
    if "rp_user" not in g:
        g.rp_user = None
        local_id = session.get("local_session")
        if local_id:
            row = get_db().execute("SELECT claims, ended_at FROM rp_sessions WHERE id = ?", (local_id,)).fetchone()
            if row is not None and row["ended_at"] is None:
                g.rp_user = json.loads(row["claims"])
    return g.rp_user


def login_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        if current_user() is None:
            session["after_login"] = request.path
            return redirect(url_for("rp.login"))
        return view(*args, **kwargs)

    return wrapped


def step_up_required(view):
    """Signed in, and recently enough with the second factor (see the
    module's docstring); otherwise through the OP's step-up and back."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        user = current_user()
        if user is None or not _stepped_up(user):
            session["after_login"] = request.path
            return redirect(url_for("rp.login", step_up="1"))
        return view(*args, **kwargs)

    return wrapped


def _stepped_up(user: dict) -> bool:
    recent = int(user.get("auth_time") or 0) >= time.time() - current_app.config["STEP_UP_MAX_AGE"]
    return recent and (user.get("acr") == ACR_MFA or bool(user.get("step_up")))


bp = Blueprint("rp", __name__)


def _op():
    return current_app.extensions["rp.oauth"].op


@bp.route("/favicon.ico")
def favicon():
    """The iTSCOM icon, as every site of the operator shows it (not a 404 per page view)."""
    return send_from_directory(STATIC, "favicon.ico", max_age=7 * 24 * 3600)


@bp.route("/login")
def login():
    # The customer's choice on this site goes with them to the OP's pages.
    asked = {"ui_locales": chosen_language()} if chosen_language() else {}
    if request.args.get("step_up") and current_user() is not None:
        # A change ahead: the second factor (or, without one, the password), recently.
        asked.update(acr_values=ACR_MFA, max_age=str(current_app.config["STEP_UP_MAX_AGE"]))
        session["step_up"] = True
    else:
        session.pop("step_up", None)
    return _op().authorize_redirect(url_for("rp.callback", _external=True), **asked)


@bp.route("/language/<tag>")
def language(tag: str):
    """The header's 「English」/「日本語」 link: remember it, show the same page."""
    if tag not in LANGUAGES:
        abort(404)
    target = request.args.get("next") or "/"
    if not target.startswith("/") or target.startswith(("//", "/\\")) or any(c in target for c in "\r\n\\"):
        target = "/"
    response = redirect(target, 303)
    response.set_cookie(current_app.config["LANGUAGE_COOKIE"], tag, max_age=LANGUAGE_COOKIE_MAX_AGE, httponly=True,
                        samesite="Lax", secure=current_app.config["SESSION_COOKIE_SECURE"])
    return response


@bp.route("/auth/callback")
def callback():
    op = _op()
    issuer = op.load_server_metadata()["issuer"]
    if request.args.get("iss") != issuer:  # RFC 9207: the response must come from our OP
        abort(400)
    try:
        token = op.authorize_access_token()
    except OAuthError as error:
        return render_template("error.html", message=gettext("ログインできませんでした（%(error)s）。", error=error.error)), 400
    id_claims = token["userinfo"]
    claims = dict(op.userinfo(token=token))
    if claims.get("sub") != id_claims["sub"]:
        abort(400)
    # How the customer authenticated, from the ID token (step_up_required).
    claims.update({name: id_claims[name] for name in ("acr", "amr", "auth_time") if name in id_claims})
    if session.pop("step_up", None):
        claims["step_up"] = True
    local_id = secrets.token_urlsafe(32)
    get_db().execute(
        "INSERT INTO rp_sessions (id, sid, sub, claims, id_token, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (local_id, id_claims.get("sid"), id_claims["sub"], json.dumps(claims, ensure_ascii=False),
         token["id_token"], int(time.time())),
    )
    get_db().commit()
    after = session.pop("after_login", None)
    session.clear()
    session["local_session"] = local_id
    session["form_token"] = secrets.token_urlsafe(24)  # for the logout form (CSRF)
    return redirect(after if after and after.startswith("/") and not after.startswith("//") else "/")


@bp.route("/logout", methods=["POST"])
def logout():
    """End the local session here, then ask the OP to end the single sign-on."""
    expected = session.get("form_token")
    if not expected or not secrets.compare_digest(request.form.get("form_token", ""), expected):
        abort(400)  # not our own logout form
    local_id = session.pop("local_session", None)
    row = None
    if local_id:
        row = get_db().execute("SELECT id_token FROM rp_sessions WHERE id = ?", (local_id,)).fetchone()
        get_db().execute("UPDATE rp_sessions SET ended_at = ? WHERE id = ?", (int(time.time()), local_id))
        get_db().commit()
    if row is None:
        return redirect(url_for("rp.logged_out"))
    return _op().logout_redirect(post_logout_redirect_uri=url_for("rp.logged_out", _external=True),
                                 id_token_hint=row["id_token"])


@bp.route("/logged-out")
def logged_out():
    if request.args.get("state"):
        try:
            _op().validate_logout_response()
        except OAuthError:
            abort(400)
    return render_template("logged_out.html")


@bp.route("/backchannel-logout", methods=["POST"])
def backchannel_logout():
    """Back-Channel Logout 1.0 section 2.6: validate the logout token, end the sessions."""
    raw = request.form.get("logout_token", "")
    try:
        jws.extract_compact(raw.encode())  # junk is refused before any network call
        claims = _validate_logout_token(raw)
    except (JoseError, ValueError, KeyError):
        return {"error": "invalid_request"}, 400, {"Cache-Control": "no-store"}
    except requests.RequestException:
        # The OP's keys cannot be fetched now: the OP retries later.
        return {"error": "temporarily_unavailable"}, 503, {"Cache-Control": "no-store"}
    db = get_db()
    try:
        db.execute("INSERT INTO rp_logout_jtis (jti, seen_at) VALUES (?, ?)", (claims["jti"], int(time.time())))
    except sqlite3.IntegrityError:
        return {"error": "invalid_request"}, 400, {"Cache-Control": "no-store"}  # replayed
    if claims.get("sid"):
        db.execute("UPDATE rp_sessions SET ended_at = ? WHERE sid = ? AND ended_at IS NULL",
                   (int(time.time()), claims["sid"]))
    else:
        db.execute("UPDATE rp_sessions SET ended_at = ? WHERE sub = ? AND ended_at IS NULL",
                   (int(time.time()), claims["sub"]))
    db.commit()
    return "", 200, {"Cache-Control": "no-store"}


def _validate_logout_token(raw: str) -> dict:
    op = _op()
    metadata = op.load_server_metadata()
    header = jws.extract_compact(raw.encode()).headers()
    if header.get("typ") != "logout+jwt":
        raise ValueError("not a logout token (typ)")
    keys = KeySet.import_key_set(op.fetch_jwk_set())
    if header.get("kid") and header["kid"] not in {k.kid for k in keys}:
        keys = KeySet.import_key_set(op.fetch_jwk_set(force=True))  # the OP rotated its keys
    claims = jwt.decode(raw, keys).claims
    registry = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": metadata["issuer"]},
        aud={"essential": True, "value": current_app.config["CLIENT_ID"]},
        iat={"essential": True},
        exp={"essential": True},
        jti={"essential": True},
        leeway=120,
    )
    registry.validate(claims)
    if claims["iat"] < time.time() - 600:
        raise ValueError("logout token too old")
    events = claims.get("events")
    if not isinstance(events, dict) or BACKCHANNEL_EVENT not in events:
        raise ValueError("not a logout token")
    if "nonce" in claims or not (claims.get("sid") or claims.get("sub")):
        raise ValueError("not a logout token")
    return claims


def _close_db(exception=None):
    db = g.pop("rp_db", None)
    if db is not None:
        db.close()
