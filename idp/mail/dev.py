"""/dev/mail: the development outbox, readable in the browser.

Registered only in development without IDP_MAIL_URL, where mails are never
sent: the developer reads them here and follows their URLs by hand.
"""

from flask import Blueprint, render_template

from ..extensions import db
from ..models.mail import OutboxMail
from .outbox import read_body

bp = Blueprint("devmail", __name__, url_prefix="/dev")


@bp.route("/mail")
def outbox():
    mails = db.session.scalars(db.select(OutboxMail).order_by(OutboxMail.id.desc()).limit(50)).all()
    return render_template("mail/dev_outbox.html", mails=[(m, read_body(m)) for m in mails])
