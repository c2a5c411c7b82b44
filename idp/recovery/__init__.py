"""iTSCOM ID・パスワードが分からなくなったら (manual p.17–24)."""
