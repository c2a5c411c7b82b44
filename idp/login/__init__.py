"""Login (manual p.2–3) and the OP session it creates."""
