"""はじめてのログイン: obtaining an iTSCOM ID (manual p.11–16)."""
