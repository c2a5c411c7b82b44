"""はじめてのログイン (manual p.11–16), one view per step, in the manual's order.

What the customer entered lives in the Flask session under ``registration``
(passwords never do), with ``reached``: the furthest step they may open.
A later step typed into the address bar sends them back to step 1. Steps
6–8 start from the mailed URL, possibly in another browser, and are bound
to it by the ``registration_confirm`` session key.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_babel import gettext, lazy_gettext

from .. import audit
from ..contracts import kana_key, normalise_phone
from ..extensions import db
from ..forms import ConfirmForm, choices
from ..security import sealed
from ..security.throttle import Throttled, retry_after_header, retry_after_text
from .forms import (
    AccountForm,
    AdditionalForm,
    ContactForm,
    TermsForm,
    VerifyForm,
)
from .service import (
    GUESSABLE_ITEMS,
    PAYMENT_ITEMS,
    LoginIdTaken,
    RegistrationError,
    complete_registration,
    contact_choices,
    find_pending,
    login_id_taken,
    mail_gate,
    needs_additional_item,
    normalise_item,
    replaces_an_id,
    start_registration,
    verify_additional_item,
    verify_contract,
)

bp = Blueprint("registration", __name__, url_prefix="/registration")

VERIFY, ADDITIONAL, TERMS, ACCOUNT, SENT = 1, 2, 3, 4, 5
# The step indicator's labels.
STEPS = [lazy_gettext("契約者情報認証"), lazy_gettext("利用規約"), lazy_gettext("ID・パスワード設定"),
         lazy_gettext("メール送信"), lazy_gettext("本登録"), lazy_gettext("完了")]
NOT_VERIFIED = lazy_gettext("入力された内容ではご契約を確認できませんでした。入力内容をご確認のうえ、もう一度お試しください。")


def _flow() -> dict:
    return sealed.load("registration")


def _save(**changes) -> None:
    flow = _flow()
    flow.update(changes)
    sealed.store("registration", flow)


def _allowed(step: int) -> bool:
    return _flow().get("reached", VERIFY) >= step


def _prefilled(form_class, saved: dict | None):
    """A step's form: what was posted, or on GET what the customer entered before."""
    if request.method == "POST" or not saved:
        return form_class()
    return form_class(data=saved)


def _restart_page(status: int = 400):
    audit.record("registration.url_refused", "failure")
    db.session.commit()
    return render_template("registration/restart.html", steps=STEPS, current=None), status


def _throttled_message(seconds: int) -> str:
    return gettext("一定回数以上認証に失敗したため、受付を一時停止しています。%(wait)sに再度お試しください。",
                   wait=retry_after_text(seconds))


def _refusal(refused: Throttled, kind: str, first_item: str | None = None) -> str:
    """Why a verification of a ``kind`` of item was refused, and what the
    customer can do now: a refused 4-digit item points to the items budgeted
    apart, those not already entered at step 1 (``first_item``)."""
    if kind not in GUESSABLE_ITEMS:
        return _throttled_message(refused.retry_after)
    others = [item for item in ("customer_number", "stb_id") if item != first_item]
    if others == ["stb_id"]:  # not every contract has one
        instead = gettext("%(item)sをお持ちの場合はそちら", item=PAYMENT_ITEMS["stb_id"])
    elif len(others) == 1:
        instead = str(PAYMENT_ITEMS[others[0]])
    else:
        instead = gettext("%(first)sまたは%(second)s", first=PAYMENT_ITEMS[others[0]], second=PAYMENT_ITEMS[others[1]])
    return gettext("口座番号 下4桁・クレジットカード番号 下4桁による認証は、一定回数以上失敗したため一時停止しています。"
                   "%(instead)sで認証いただくか、%(wait)sに再度お試しください。",
                   instead=instead, wait=retry_after_text(refused.retry_after))


@bp.route("/", methods=["GET", "POST"])
def verify(_form_class=VerifyForm):
    """Step 1 (p.12): 契約者情報 認証 — kana name, phone, one payment item."""
    form = _prefilled(_form_class, _flow().get("verify"))
    error, status, wait = None, 200, 0
    if request.method == "GET" and not _flow():
        _save(reached=VERIFY)
    if form.validate_on_submit():  # every format first (forms.py): only well-formed answers are verified
        kana = kana_key(form.name_kana.data)
        phone = normalise_phone(form.phone.data)
        value = normalise_item(form.payment_type.data, form.payment_value.data)
        entered = {"name_kana": form.name_kana.data, "phone": form.phone.data,
                   "payment_type": form.payment_type.data, "payment_value": form.payment_value.data}
        try:
            contract_ids = verify_contract(kana, phone, form.payment_type.data, value, request.remote_addr)
        except Throttled as refused:
            contract_ids, status, wait = [], 429, refused.retry_after
            error = _refusal(refused, form.payment_type.data)
        else:
            error = None if contract_ids else NOT_VERIFIED
        db.session.commit()
        if contract_ids:
            additional = needs_additional_item(contract_ids)
            _save(verify=entered, identity=[kana, phone], candidates=contract_ids,
                  needs_additional=additional, reached=ADDITIONAL if additional else TERMS,
                  contract_id=None if additional else contract_ids[0])
            return redirect(url_for(".additional" if additional else ".terms"), 303)
    return render_template("registration/verify.html", form=form, error=error, items=PAYMENT_ITEMS,
                           steps=STEPS, current=0), status, retry_after_header(wait)


@bp.route("/additional", methods=["GET", "POST"])
def additional(_form_class=AdditionalForm):
    """Step 2 (p.13 (3)(4)): 追加認証情報 — a different item narrows to one contract."""
    flow = _flow()
    if not _allowed(ADDITIONAL) or not flow.get("candidates"):
        return redirect(url_for(".verify"))
    first = flow["verify"]["payment_type"]
    form = _prefilled(_form_class, flow.get("additional"))
    form.payment_type.choices = choices((k, v) for k, v in PAYMENT_ITEMS.items() if k != first)
    if request.method == "POST" and "back" in request.form:
        _save(additional={"payment_type": form.payment_type.data, "payment_value": form.payment_value.data})
        return redirect(url_for(".verify"), 303)
    error, status, wait = None, 200, 0
    if form.validate_on_submit():
        kana, phone = flow["identity"]
        value = normalise_item(form.payment_type.data, form.payment_value.data)
        try:
            contract_ids = verify_additional_item(kana, phone, first, flow["candidates"], form.payment_type.data,
                                                  value, request.remote_addr)
        except Throttled as refused:
            contract_ids, status, wait = [], 429, refused.retry_after
            error = _refusal(refused, form.payment_type.data, first)
        else:
            error = None if len(contract_ids) == 1 else NOT_VERIFIED
        db.session.commit()
        if len(contract_ids) == 1:
            _save(additional={"payment_type": form.payment_type.data, "payment_value": form.payment_value.data},
                  contract_id=contract_ids[0], reached=TERMS)
            return redirect(url_for(".terms"), 303)
    html = render_template("registration/additional.html", form=form, error=error, steps=STEPS, current=0)
    return html, status, retry_after_header(wait)


@bp.route("/terms", methods=["GET", "POST"])
def terms(_form_class=TermsForm):
    """Step 3 (p.14): 利用規約 — read マイページ利用規約, choose 承諾する, 確認."""
    flow = _flow()
    if not _allowed(TERMS) or not flow.get("contract_id"):
        return redirect(url_for(".verify"))
    form = _prefilled(_form_class, {"agreement": flow.get("agreement")})
    if request.method == "POST" and "back" in request.form:
        return redirect(url_for(".additional" if flow.get("needs_additional") else ".verify"), 303)
    if form.validate_on_submit():
        if form.agreement.data == "agree":
            _save(agreement="agree", reached=max(flow["reached"], ACCOUNT))
            return redirect(url_for(".account"), 303)
        form.agreement.errors.append(gettext("マイページをご利用いただくには、利用規約への承諾が必要です。"))
    return render_template("registration/terms.html", form=form, steps=STEPS, current=1)


@bp.route("/account", methods=["GET", "POST"])
def account(_form_class=AccountForm):
    """Step 4 (p.14): iTSCOM ID, パスワード, パスワード再入力 under the manual's rules, 次へ."""
    flow = _flow()
    if not _allowed(ACCOUNT) or not flow.get("contract_id"):
        return redirect(url_for(".verify"))
    form = _prefilled(_form_class, {"login_id": flow.get("login_id", "")})
    error, status, wait = None, 200, 0
    if request.method == "POST" and "back" in request.form:
        _save(login_id=form.login_id.data or "")
        return redirect(url_for(".terms"), 303)
    if form.validate_on_submit():
        login_id = form.login_id.data
        gate = mail_gate(flow["contract_id"], request.remote_addr)
        wait = gate.begin()  # counted for good: every answer and every mail counts
        if wait:
            audit.record("registration.step4_throttled", "failure", retry_after=wait)
            db.session.commit()
            error, status = _throttled_message(wait), 429
        elif login_id_taken(login_id, flow["contract_id"]):
            form.login_id.errors.append(gettext("このiTSCOM IDはご利用いただけません。別のメールアドレスを入力してください。"))
        else:
            start_registration(flow["contract_id"], login_id, form.password.data)
            db.session.commit()
            sealed.store("registration", {"reached": SENT, "sent_to": login_id})
            return redirect(url_for(".sent"), 303)
    form.password.data = form.password_confirm.data = ""
    html = render_template("registration/account.html", form=form, error=error, steps=STEPS, current=2,
                           replaces=replaces_an_id(flow["contract_id"]))
    return html, status, retry_after_header(wait)


@bp.route("/sent")
def sent():
    """Step 5 (p.15): the mail has been sent."""
    if not _allowed(SENT) or "sent_to" not in _flow():
        return redirect(url_for(".verify"))
    return render_template("registration/sent.html", steps=STEPS, current=3)


@bp.route("/confirm/<token>", methods=["GET", "POST"])
def confirm(token: str):
    """Steps 6–7 (p.15–16): the mailed URL shows what was entered; 次へ continues.

    Opening the URL changes nothing (mail scanners open links too); only
    completion uses it up.
    """
    pending = find_pending(token)
    if pending is None:
        return _restart_page()
    choices = contact_choices(pending)
    if request.method == "POST":
        if len(choices) == 1:
            return _complete(pending.id, choices[0])
        session["registration_confirm"] = token
        return redirect(url_for(".contact"), 303)
    return render_template("registration/confirm.html", pending=pending, form=ConfirmForm(), steps=STEPS, current=4,
                           replaces=replaces_an_id(pending.contract_id))


@bp.route("/contact", methods=["GET", "POST"])
def contact(_form_class=ContactForm):
    """Step 7 (p.16): 連絡先メールアドレス(※)を選択してください。"""
    pending = find_pending(session.get("registration_confirm", ""))
    if pending is None:
        return _restart_page()
    form = _form_class()
    form.contact_email.choices = choices((address, address) for address in contact_choices(pending))
    if form.validate_on_submit():
        return _complete(pending.id, form.contact_email.data)
    return render_template("registration/contact.html", form=form, steps=STEPS, current=4)


@bp.route("/complete")
def complete():
    """Step 8 (p.16): the iTSCOM ID is registered."""
    if not session.get("registration_done"):
        return redirect(url_for(".verify"))
    return render_template("registration/complete.html", steps=STEPS, current=5)


def _complete(pending_id: int, contact_email: str):
    try:
        complete_registration(pending_id, contact_email)
    except LoginIdTaken:
        db.session.commit()  # the refusal is audited
        message = gettext("このiTSCOM IDは既に登録されています。お手数ですが、別のiTSCOM IDで手続きをはじめからやり直してください。")
        return render_template("registration/restart.html", message=message, steps=STEPS, current=None), 409
    except RegistrationError:
        return _restart_page()
    db.session.commit()
    session.pop("registration", None)
    session.pop("registration_confirm", None)
    session["registration_done"] = True
    return redirect(url_for(".complete"), 303)


