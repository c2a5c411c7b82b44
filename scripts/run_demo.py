"""`make run`: the OP, My Page and the support site with demo data, on fixed
loopback ports, until Ctrl-C.

The OP runs on the embedded default (SQLite under instance/); each relying
party gets its own SQLite file there too and only the OP's issuer URL and its
client id and secret, as a real RP would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OP_PORT = 5000


def main() -> int:
    from flask_migrate import upgrade

    from idp import create_app
    from idp.demo import LOGIN_ID, MYPAGE_PORT, PASSWORD, SUPPORT_PORT, load

    # localhost, not 127.0.0.1: browsers refuse passkeys (WebAuthn) for an IP
    # address, and the OP's login page offers them only where they work.
    os.environ.setdefault("IDP_ISSUER", f"http://localhost:{OP_PORT}")
    # Signing in on the OP's own login page lands on the local My Page.
    os.environ.setdefault("IDP_HOME_URL", f"http://127.0.0.1:{MYPAGE_PORT}/")
    # The demo sites' back-channel logout URIs are on loopback: development only.
    os.environ.setdefault("IDP_ALLOW_PRIVATE_OUTBOUND", "1")
    app = create_app({"MIGRATIONS": True})
    with app.app_context():
        upgrade()
        clients = load()
    issuer = app.config["ISSUER"]
    instance = Path(app.instance_path)
    flask = [sys.executable, "-m", "flask"]
    processes = [subprocess.Popen([*flask, "--app", "idp", "run", "--host", "127.0.0.1", "--port", str(OP_PORT)])]
    for prefix, module, port, client_id in [
        ("MYPAGE", "sites.mypage", MYPAGE_PORT, "mypage-demo"),
        ("SUPPORT", "sites.support", SUPPORT_PORT, "support-demo"),
    ]:
        env = dict(os.environ)
        env.update({
            f"{prefix}_ISSUER": issuer,
            f"{prefix}_CLIENT_ID": client_id,
            f"{prefix}_CLIENT_SECRET": clients[client_id]["client_secret"],
            f"{prefix}_SECRET_KEY": app.secret_key + prefix,
            f"{prefix}_DATABASE": str(instance / f"{module.split('.')[-1]}.sqlite3"),
        })
        processes.append(subprocess.Popen([*flask, "--app", module, "run", "--host", "127.0.0.1", "--port", str(port)],
                                          env=env))
    print(
        "\n"
        f"  iTSCOM ID (OP)   {issuer}/login\n"
        f"  My Page          http://127.0.0.1:{MYPAGE_PORT}/\n"
        f"  サポート          http://127.0.0.1:{SUPPORT_PORT}/\n"
        f"  mail (dev)       {issuer}/dev/mail\n"
        f"  demo login       {LOGIN_ID} / {PASSWORD}\n"
        "  Ctrl-C stops all three.\n",
        flush=True,
    )
    try:
        while all(p.poll() is None for p in processes):
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        for p in processes:
            p.terminate()
        for p in processes:
            p.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
