"""openid-client 6 (an OpenID Certified RP library, Node.js) as the relying
party of a browser test: the scripts in tests/rp_node, installed by
``npm ci`` there (the Makefile does). Without Node.js or that install the
tests skip locally; under CI (CI set) they fail."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

RP_NODE = Path(__file__).resolve().parents[1] / "rp_node"


def script(name: str) -> Path:
    """tests/rp_node/NAME, or skip (fail under CI) when it cannot run."""
    if not shutil.which("node") or not (RP_NODE / "node_modules" / "openid-client").is_dir():
        message = "openid-client not installed: cd tests/rp_node && npm ci"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return RP_NODE / name


def free_port(ports: range) -> int:
    """The first free loopback port of ``ports``."""
    for port in ports:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1}")
