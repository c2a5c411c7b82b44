"""The operator's console (/admin): clients, contracts, accounts, keys, audit log."""
