"""Entry points that the login page links to and later work fills in.

The registration (manual p.11–16) and recovery (p.17–24) procedures are not
built yet; their entry URLs exist so that the login page links to where they
will live, and say honestly that the procedure is not available yet.
"""

from flask import Blueprint, render_template

bp = Blueprint("pages", __name__)


@bp.route("/registration/")
def registration():
    """はじめてのログイン (p.11): the registration procedure starts here."""
    return render_template("pages/unavailable.html", title="iTSCOM IDの新規登録"), 503


@bp.route("/recovery/")
def recovery():
    """iTSCOM ID・パスワードが分からなくなったら (p.17): recovery starts here."""
    return render_template("pages/unavailable.html", title="iTSCOM ID・パスワードがご不明なお客様"), 503
