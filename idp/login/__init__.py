"""Login (manual p.2–3): the login page; the OP session it starts is idp.sessions."""
