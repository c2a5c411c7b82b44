"""The authorization endpoint: a client asks, the customer signs in and consents.

Steps, in order:
1. ``validate``: Authlib checks client, redirect URI, response type, scope,
   PKCE and OIDC parameters. Errors before the redirect URI is trusted are a
   page; after, they go back to the client (with ``iss``, RFC 9207).
2. ``needs_login``: no session, ``prompt=login`` or ``max_age`` exceeded send
   the customer to the login page; they come back here afterwards.
   ``needs_step_up``: ``acr_values`` (or an essential ``acr`` claim)
   asking for urn:itscom:acr:mfa of a password-only session of an account
   with a second factor sends the customer to the factor's page
   (idp.second_factor); ``prompt=none`` then answers login_required. An
   account without a factor is signed in as it can be: its ID token says
   acr urn:itscom:acr:pwd (acr_values are voluntary, Core 3.1.2.1), and
   an essential acr claim it cannot meet answers
   unmet_authentication_requirements.
3. ``needs_consent``: third-party clients ask once per scope set (remembered);
   ``prompt=consent`` asks again; first-party clients never ask.
4. Authlib issues the code; ``deliver`` sends it by ``query`` or ``form_post``.

Interactions come back to ``/authorize`` with the same parameters, so every
protocol response leaves from this one view. Flow markers in the Flask
session are bound to a digest of those parameters.

A request with a ``request_uri`` (RFC 9126 4) is first replaced by the
parameters its client pushed (``oauth.par``), which then travel like any
others; a client that must push is refused without one (``par.must_push``).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749.errors import InvalidRequestError, OAuth2Error
from authlib.oidc.core.errors import ConsentRequiredError, LoginRequiredError
from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext

from .. import audit, language, pending, second_factor
from ..claims import allowed_claims_request, in_reading_order, parse_claims_request, scopes_implied
from ..extensions import csrf, db
from ..forms import ConfirmForm
from ..models import Consent
from ..security.clock import now
from ..security.secrets import digest
from ..sessions import current_login_session
from . import par
from .grants import MAX_REQUEST_LENGTH
from .server import oauth_server

bp = Blueprint("authorize", __name__)

MAX_PENDING_CONSENTS = 3


@bp.route("/authorize", methods=["GET", "POST"])
@csrf.exempt  # an RP may POST an authorization request (Core 3.1.2.1); it changes nothing a GET could not
def authorize():
    params = _request_params()
    # RFC 9126's request_uri; any other goes to Authlib, which refuses it (grants.AuthorizationRequestChecks).
    pushed = any(uri.startswith(par.REQUEST_URI_PREFIX) for uri in request.values.getlist("request_uri"))
    if pushed:
        try:
            params = _pushed_params()
        except OAuth2Error as error:
            return render_template("oauth/error.html", error=error), 400
    encoded = urlencode(sorted(params))
    if len(encoded) > MAX_REQUEST_LENGTH:
        error = InvalidRequestError(f"The authorization request is too long (over {MAX_REQUEST_LENGTH} characters).")
        return render_template("oauth/error.html", error=error), 400
    request_digest = g.idp_request_digest = digest(encoded)
    if pushed:
        pending.remember_pushed(request_digest)
    elif par.must_push(request.values.get("client_id"), request_digest):
        error = InvalidRequestError("This client must push its authorization requests (RFC 9126 5).")
        return render_template("oauth/error.html", error=error), 400
    login_session = current_login_session()
    server = oauth_server()
    try:
        grant = server.get_consent_grant(end_user=login_session)
    except OAuth2Error as error:
        return _error_response(error)
    except ValueError:
        # Authlib refuses to build an error whose description would quote
        # characters RFC 6749 forbids there (e.g. response_type='code"').
        return render_template("oauth/error.html", error=InvalidRequestError()), 400

    data = grant.request.payload.data
    prompts = set((data.get("prompt") or "").split())
    if login_session is None or _needs_login(login_session, data, prompts, request_digest):
        if "none" in prompts:
            return _error_response(LoginRequiredError(redirect_uri=grant.redirect_uri, state=data.get("state")))
        return _send_to_login(params, data, request_digest=request_digest, client_id=grant.client.client_id)
    wanted, essential = _acr_asked(data)
    if second_factor.unmet_acr(wanted, login_session.methods):
        if second_factor.has_factor(login_session.account):
            if "none" in prompts:
                return _error_response(LoginRequiredError(redirect_uri=grant.redirect_uri, state=data.get("state")))
            return _send_to_step_up(params, data, login_session, request_digest=request_digest,
                                    client_id=grant.client.client_id)
        if essential:
            error = _unmet_error(redirect_uri=grant.redirect_uri, state=data.get("state"))
            return _error_response(error)

    if session.pop("consent_denied", None) == request_digest:
        audit.record("consent.denied", account=login_session.account, client_id=grant.client.client_id)
        db.session.commit()
        return _deliver(server.create_authorization_response(grant.request, grant=grant, grant_user=None), grant.redirect_uri, data)

    scope = _consent_scope(grant)
    if _needs_consent(grant, login_session, scope, prompts, request_digest):
        if "none" in prompts:
            return _error_response(ConsentRequiredError(redirect_uri=grant.redirect_uri, state=data.get("state")))
        waiting = [entry for entry in _pending_consents() if entry["request"] != request_digest]
        waiting.append({"request": request_digest, "params": params, "client_id": grant.client.client_id,
                        "scope": scope, "length": len(encoded)})
        session["consent_pending"] = _latest_fitting(waiting)
        return render_template(
            "oauth/consent.html",
            client=grant.client,
            scopes=in_reading_order(scope.split()),
            request_digest=request_digest,
            form=ConfirmForm(),
        )

    # The request Authlib validated for the grant, not a second one built from Flask's.
    response = server.create_authorization_response(grant.request, grant=grant, grant_user=login_session)
    return _deliver(response, grant.redirect_uri, data)


@bp.route("/authorize/consent", methods=["POST"])
def consent():
    """The customer answered the consent page: remember a yes, pass on a no."""
    form = ConfirmForm()
    # The answer applies to the request the page showed, named in the form.
    request_digest = request.form.get("request", "")
    waiting = _pending_consents()
    asked = next((entry for entry in waiting if entry["request"] == request_digest), None)
    session["consent_pending"] = [entry for entry in waiting if entry is not asked]
    login_session = current_login_session()
    if not form.validate_on_submit() or asked is None or login_session is None:
        return render_template("errors/error.html", message=gettext("手続きをはじめからやり直してください。")), 400
    params = [tuple(p) for p in asked["params"]]
    if request.form.get("decision") == "approve":
        db.session.add(
            Consent(
                account_id=login_session.account_id,
                client_id=asked["client_id"],
                scope=asked["scope"],
                granted_at=now(),
            )
        )
        audit.record("consent.granted", account=login_session.account, client_id=asked["client_id"], scope=asked["scope"])
        db.session.commit()
        session["consent_given"] = request_digest
    else:
        session["consent_denied"] = request_digest
    return redirect(url_for("authorize.authorize") + "?" + urlencode(params), 303)


def _pending_consents() -> list[dict]:
    """Consent pages this browser shows, oldest first. A list: Flask stores
    the session's dicts with their keys sorted, which would lose the order."""
    entries = session.get("consent_pending")
    return entries if isinstance(entries, list) else []


def _latest_fitting(entries: list[dict]) -> list[dict]:
    """Several tabs may each show a consent page: keep the latest few whose
    requests together stay within one request's length (the flow cookie)."""
    kept, length = [], 0
    for entry in reversed(entries[-MAX_PENDING_CONSENTS:]):
        length += entry["length"]
        if kept and length > MAX_REQUEST_LENGTH:
            break
        kept.append(entry)
    return kept[::-1]


def _request_params() -> list[tuple[str, str]]:
    values = request.args if request.method == "GET" else request.form
    return [(key, value) for key in values for value in values.getlist(key) if key != "csrf_token"]


def _pushed_params() -> list[tuple[str, str]]:
    """The parameters pushed for this request's request_uri (spent now, and
    committed at once: RFC 9126 4, one use, whatever happens next). Authlib
    reads them instead of the request's (server.AuthorizationServer); other
    parameters sent along are ignored (RFC 9126 4)."""
    if len(request.values.getlist("request_uri")) > 1 or len(request.values.getlist("client_id")) > 1:
        raise InvalidRequestError("The parameter 'request_uri' or 'client_id' is repeated.")
    params = par.take(request.values.get("client_id"), request.values["request_uri"])
    db.session.commit()
    g.idp_authorization_params = dict(params)
    return params


def _authorization_values():
    """The authorization request's parameters: pushed ones, or the request's."""
    return g.get("idp_authorization_params") or request.values


def _needs_login(login_session, data, prompts: set[str], request_digest: str) -> bool:
    fresh = session.get("reauth_done") == request_digest
    if fresh:
        session.pop("reauth_done")
        return False
    if "login" in prompts:
        return True
    max_age = data.get("max_age")
    return max_age is not None and now() - login_session.auth_time > int(max_age)


def _send_to_login(params, data, *, request_digest: str, client_id: str):
    """To the login page, which names the client that asked and comes back
    here afterwards; the login satisfies prompt=login and max_age for this
    request, whether or not the browser had a session before."""
    hint = data.get("login_hint")
    login_url = pending.remember(
        request_digest, url_for("authorize.authorize") + "?" + urlencode(params), client_id=client_id,
        hint=hint if hint and len(hint) <= 254 else None, reauth=request_digest,
        locale=language.from_ui_locales(data.get("ui_locales")),
    )
    return redirect(login_url, 303)


def _acr_asked(data) -> tuple[list[str], bool]:
    """The acr values the request asks for, most preferred first: its
    acr_values, else an essential acr claim of the ID token (Core 5.5.1.1);
    and whether they are essential."""
    wanted = (data.get("acr_values") or "").split()
    if wanted:
        return wanted, False
    acr = ((parse_claims_request(data.get("claims")) or {}).get("id_token") or {}).get("acr")
    if not isinstance(acr, dict) or acr.get("essential") is not True:
        return [], False
    values = acr.get("values") if isinstance(acr.get("values"), list) else [acr.get("value")]
    return [v for v in values if isinstance(v, str)], True


def _send_to_step_up(params, data, login_session, *, request_digest: str, client_id: str):
    """To the factor's page, which steps this session up and comes back here."""
    pending.remember(request_digest, url_for("authorize.authorize") + "?" + urlencode(params), client_id=client_id,
                     locale=language.from_ui_locales(data.get("ui_locales")))
    second_factor.hold(login_session.account, request_digest, step_up_sid=login_session.sid)
    return redirect(url_for("login.factor", request=request_digest), 303)


def _unmet_error(**kwargs) -> OAuth2Error:
    return OAuth2Error("The requested authentication context cannot be met for this account.",
                       error="unmet_authentication_requirements", **kwargs)


def _consent_scope(grant) -> str:
    """The granted scopes plus those whose claims the claims parameter asks for."""
    claims = allowed_claims_request(grant.request.payload.data.get("claims"), grant.client)
    return " ".join(sorted(set(grant.request.scope.split()) | scopes_implied(claims)))


def _needs_consent(grant, login_session, scope: str, prompts: set[str], request_digest: str) -> bool:
    if grant.client.first_party:
        return False
    if session.get("consent_given") == request_digest:
        session.pop("consent_given")
        return False
    if "consent" in prompts:
        return True
    consents = db.session.scalars(
        db.select(Consent).filter_by(account_id=login_session.account_id, client_id=grant.client.client_id, revoked_at=None)
    )
    return not any(c.covers(scope) for c in consents)


def _error_response(error: OAuth2Error):
    if not error.redirect_uri:
        # The redirect URI is not trusted (yet): never redirect, show a page.
        return render_template("oauth/error.html", error=error), 400
    return _deliver(oauth_server().handle_error_response(None, error), error.redirect_uri, _authorization_values())


def _deliver(response: Response, redirect_uri: str, data) -> Response:
    """Send an Authlib redirect response by the requested response mode, with iss."""
    location = response.headers.get("Location")
    if response.status_code != 302 or not location:
        return response
    pending.forget_pushed(g.idp_request_digest)  # answered: a pushed request is done
    # Authlib appended its parameters to the redirect URI's own query.
    own = parse_qsl(urlsplit(redirect_uri).query, keep_blank_values=True)
    params = parse_qsl(urlsplit(location).query, keep_blank_values=True)[len(own):]
    params.append(("iss", current_app.config["ISSUER"]))
    if data.get("response_mode") == "form_post":
        page = render_template("oauth/form_post.html", action=redirect_uri, params=params)
        return Response(page, headers={"Cache-Control": "no-store"})
    response.headers["Location"] = add_params_to_uri(redirect_uri, params)
    return response
