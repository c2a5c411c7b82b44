"""The customer's own settings on the OP (SPEC §3.4), linked from My Page's 各種設定."""
