"""A customer walking through はじめてのログイン with the test client."""

from __future__ import annotations

from urllib.parse import urlsplit

from idp.mail import deliver_due

from ..helpers import csrf_token, submit
from ..mailserver import url_in

SUZUKI = {"name_kana": "スズキハナコ", "phone": "0449876543", "payment_type": "bank_last4", "payment_value": "0077"}


class Registrant:
    def __init__(self, app, client, mail_server=None, address: str = "127.0.0.1") -> None:
        self.app, self.client, self.mail_server = app, client, mail_server
        self.environ = {"REMOTE_ADDR": address}

    def post(self, path: str, data: dict):
        return submit(self.client, path, data, environ_base=self.environ)

    def verify(self, **answers):
        return self.post("/registration/", {**SUZUKI, **answers})

    def agree(self):
        return self.post("/registration/terms", {"agreement": "agree"})

    def choose(self, login_id: str, password: str = "Hanako-2026", confirm: str | None = None):
        return self.post("/registration/account", {
            "login_id": login_id, "password": password, "password_confirm": password if confirm is None else confirm,
        })

    def up_to_mail(self, login_id: str, **answers) -> str:
        """Steps 1–5, then deliver the outbox; returns the mailed URL's path."""
        assert self.verify(**answers).location == "/registration/terms"
        assert self.agree().location == "/registration/account"
        response = self.choose(login_id)
        assert response.location == "/registration/sent", response.get_data(as_text=True)
        return self.mailed_path(login_id)

    def mailed_path(self, login_id: str) -> str:
        with self.app.app_context():
            deliver_due()
        return urlsplit(url_in(self.mail_server.inbox.last_to(login_id))).path

    def confirm(self, path: str, contact: str | None = None):
        """Steps 6–8 from the mailed URL; returns the final response."""
        page = self.client.get(path)
        if page.status_code != 200:
            return page
        response = self.client.post(path, data={"csrf_token": csrf_token(page.get_data(as_text=True))})
        if response.status_code == 303 and response.location == "/registration/contact":
            contact_page = self.client.get("/registration/contact")
            response = self.client.post("/registration/contact", data={
                "csrf_token": csrf_token(contact_page.get_data(as_text=True)), "contact_email": contact,
            })
        return response
