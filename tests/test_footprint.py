"""A web worker's memory: what create_app() leaves out until it is needed.

Each worker imports the whole app, so a library that only the CLI or a rare
ceremony uses costs every worker its size. These are loaded where they are
used instead.
"""

import subprocess
import sys

import pytest

# Library -> what needs it (and what loading it at start cost each worker, measured).
LOADED_WHERE_USED = {
    "flask_migrate": "the `flask db` commands (Alembic, ~12 MiB)",
    "alembic": "the `flask db` commands",
    "webauthn": "a passkey ceremony (with pyasn1, cbor2 and pyOpenSSL, 5.3 MiB)",
    "ua_parser": "the account page's device list (1.6 MiB)",
    "smtplib": "the `flask mail deliver` loop: web workers only queue mail (0.14 MiB)",
    "segno": "a QR code: the login page's, once per language, and a second factor's enrolment (0.8 MiB)",
}


@pytest.fixture(scope="module")
def modules_after_create_app(tmp_path_factory) -> set[str]:
    """The top-level modules a fresh interpreter holds once create_app() returns."""
    database = tmp_path_factory.mktemp("footprint") / "idp.sqlite3"
    script = ("import sys\n"
              "from idp import create_app\n"
              f"create_app({{'DATABASE_URL': 'sqlite:///{database}', 'SECRET_KEY': 'x' * 40,"
              " 'ISSUER': 'https://id.example.test'})\n"
              "print(' '.join(sorted({name.split('.')[0] for name in sys.modules})))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


@pytest.mark.parametrize("library", sorted(LOADED_WHERE_USED))
def test_a_worker_starts_without_what_only_the_cli_or_a_rare_page_needs(modules_after_create_app, library):
    assert library not in modules_after_create_app, f"{library} is for {LOADED_WHERE_USED[library]}"
