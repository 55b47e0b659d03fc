"""Start the throwaway OpenID Connect provider as its own process, on a free loopback port.

    with running_provider() as provider:
        sub = provider.add_user("ada", "pw-ada", groups=["northwind-compliance"])
        # the tracker's settings (or a subprocess's environment): provider.tracker_settings()
        # a browser signs in at provider.url + "/accounts/login/" when sent there

One confidential client is registered for the tracker's redirect URI /oidc/callback/ on
127.0.0.1 or localhost, any port (RFC 8252 loopback), plus any `redirect_uris` given.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.lifecycle import free_port, stop

ROOT = Path(__file__).resolve().parent.parent.parent
LOOPBACK_CALLBACKS = ("http://127.0.0.1/oidc/callback/", "http://localhost/oidc/callback/")


@dataclass(frozen=True)
class Provider:
    url: str  # e.g. http://127.0.0.1:41234
    directory: Path
    client_id: str
    client_secret: str
    name: str
    log: Path

    @property
    def issuer(self) -> str:
        return f"{self.url}/o"

    def tracker_settings(self) -> dict[str, str]:
        """What the tracker needs to use this provider: as settings, or (the same names) as
        environment variables for a tracker process (gunicorn, runserver)."""
        return {
            "OIDC_RP_CLIENT_ID": self.client_id,
            "OIDC_RP_CLIENT_SECRET": self.client_secret,
            "OIDC_OP_ISSUER": self.issuer,
            "OIDC_OP_AUTHORIZATION_ENDPOINT": f"{self.issuer}/authorize/",
            "OIDC_OP_TOKEN_ENDPOINT": f"{self.issuer}/token/",
            "OIDC_OP_USER_ENDPOINT": f"{self.issuer}/userinfo/",
            "OIDC_OP_JWKS_ENDPOINT": f"{self.issuer}/.well-known/jwks.json",
            "OIDC_PROVIDER_NAME": self.name,
        }

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "OIDC_PROVIDER_DIR": str(self.directory),
            "OIDC_PROVIDER_ISSUER": self.issuer,
            "PYTHONUNBUFFERED": "1",
        }

    def add_user(
        self, username: str, password: str, groups: Iterable[str] = (), email: str = ""
    ) -> str:
        """Add a user to the provider (or reset an existing one's password, e-mail and groups);
        returns the `sub` its tokens carry."""
        command = [sys.executable, "-m", "tests.oidc_provider", "user", username, password]
        command += ["--email", email or f"{username}@idp.example"]
        for group in groups:
            command += ["--group", group]
        done = subprocess.run(
            command, cwd=ROOT, env=self.environment(), capture_output=True, text=True, check=True
        )
        return done.stdout.strip()


def _answers(url: str) -> bool:
    with (
        contextlib.suppress(OSError, ValueError),
        urllib.request.urlopen(url, timeout=2) as response,
    ):
        return bool(json.load(response).get("issuer"))
    return False


@contextlib.contextmanager
def running_provider(
    name: str = "Test IdP", redirect_uris: Iterable[str] = ()
) -> Iterator[Provider]:
    directory = Path(tempfile.mkdtemp(prefix="osa-oidc-"))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (directory / "rsa.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    port = free_port()
    provider = Provider(
        url=f"http://127.0.0.1:{port}",
        directory=directory,
        client_id=secrets.token_urlsafe(16),
        client_secret=secrets.token_urlsafe(32),
        name=name,
        log=directory / "provider.log",
    )
    with provider.log.open("wb") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.oidc_provider",
                "serve",
                f"127.0.0.1:{port}",
                f"--client-id={provider.client_id}",
                f"--client-secret={provider.client_secret}",
                *LOOPBACK_CALLBACKS,
                *redirect_uris,
            ],
            cwd=ROOT,
            env=provider.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        # Counts attempts rather than reading a clock: the tests' clock is frozen.
        for _ in range(300):
            if _answers(f"{provider.issuer}/.well-known/openid-configuration"):
                break
            if server.poll() is not None:
                break
            time.sleep(0.1)
        else:
            server.kill()
        if server.poll() is not None:
            raise RuntimeError(f"the OIDC provider did not start:\n{provider.log.read_text()}")
        yield provider
    finally:
        stop(server, timeout=10)
        shutil.rmtree(directory, ignore_errors=True)
