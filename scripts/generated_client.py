"""The README walkthrough through a client generated from the server's own OpenAPI document.

Usage: python3 scripts/generated_client.py BASE_URL

Generates a Python client from BASE_URL/openapi.json with openapi-python-client (from PyPI),
imports it and, against the live server: registers, logs in, reads /me and the sessions,
refreshes, logs out, and reads a typed error from each of native, envelope and rbac. Checks
that the generated models carry real types: timestamps are datetime.datetime, ids uuid.UUID.
Exits non-zero with the first broken expectation.
"""

import datetime
import importlib
import json
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from pathlib import Path


def generate(base_url: str, into: Path) -> None:
    with urllib.request.urlopen(f"{base_url}/openapi.json") as answer:
        (into / "openapi.json").write_bytes(answer.read())
    subprocess.run(
        [
            "openapi-python-client",
            "generate",
            "--path",
            str(into / "openapi.json"),
            "--output-path",
            str(into / "auth_client"),
            "--meta",
            "none",
            "--overwrite",
        ],
        check=True,
        capture_output=True,
    )


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"generated client: expected {what}")


def main(base_url: str) -> None:
    work = Path(tempfile.mkdtemp())
    generate(base_url, work)
    sys.path.insert(0, str(work))
    client_mod = importlib.import_module("auth_client")
    native = "auth_client.api.native."
    register = importlib.import_module(native + "native_post_register")
    login = importlib.import_module(native + "native_post_login")
    get_me = importlib.import_module(native + "native_get_me")
    get_sessions = importlib.import_module(native + "native_get_sessions")
    refresh = importlib.import_module(native + "native_post_refresh")
    logout = importlib.import_module(native + "native_post_logout")
    models = importlib.import_module("auth_client.models")

    client = client_mod.Client(base_url=base_url)
    email = f"ada-{uuid.uuid4().hex}@example.com"
    password = "correct horse battery staple"

    created = register.sync(
        client=client,
        body=models.RegisterRequest(email=email, password=password, full_name="Ada"),
    )
    expect(isinstance(created, models.AuthResponse), f"register -> AuthResponse, got {created!r}")
    user = created.user
    expect(isinstance(user.id, uuid.UUID), f"user.id a UUID, got {type(user.id)}")
    expect(
        isinstance(user.created_at, datetime.datetime),
        f"user.created_at a datetime, got {type(user.created_at)}",
    )
    expect(user.email == email, "the registered email")

    session = login.sync(
        client=client, body=models.NativeLoginRequest(email=email, password=password)
    )
    expect(isinstance(session, models.AuthResponse), f"login -> AuthResponse, got {session!r}")
    authed = client_mod.AuthenticatedClient(base_url=base_url, token=session.token.access_token)

    me = get_me.sync(client=authed)
    expect(isinstance(me, models.UserBody) and me.id == user.id, f"/me -> the user, got {me!r}")

    sessions = get_sessions.sync(client=authed)
    expect(isinstance(sessions, list) and len(sessions) == 2, f"two sessions, got {sessions!r}")
    expect(
        all(isinstance(s.last_used_at, datetime.datetime) for s in sessions),
        "sessions' last_used_at datetimes",
    )

    rotated = refresh.sync(
        client=client, body=models.RefreshRequest(refresh_token=session.token.refresh_token)
    )
    expect(isinstance(rotated, models.TokenBody), f"refresh -> TokenBody, got {rotated!r}")
    authed = client_mod.AuthenticatedClient(base_url=base_url, token=rotated.access_token)
    out = logout.sync_detailed(client=authed)
    expect(out.status_code == 204, f"logout -> 204, got {out.status_code}")
    after = get_me.sync(client=authed)
    expect(
        isinstance(after, models.Problem) and after.status == 401,
        f"/me after logout -> a 401 Problem, got {after!r}",
    )

    # Typed errors of the other dialects: a wrong password.
    wrong = login.sync(client=client, body=models.NativeLoginRequest(email=email, password="x" * 12))
    expect(
        isinstance(wrong, models.Problem) and wrong.code == "INVALID_CREDENTIALS",
        f"native: a Problem with INVALID_CREDENTIALS, got {wrong!r}",
    )
    envelope = importlib.import_module("auth_client.api.envelope.envelope_post_token")
    answer = envelope.sync(
        client=client, body=models.LoginRequest(email=email, password="x" * 12)
    )
    expect(isinstance(answer, models.EnvelopeError), f"envelope: an EnvelopeError, got {answer!r}")
    rbac = importlib.import_module("auth_client.api.rbac.rbac_post_login")
    answer = rbac.sync(client=client, body=models.LoginRequest(email=email, password="x" * 12))
    expect(isinstance(answer, models.DetailError), f"rbac: a DetailError, got {answer!r}")

    print(json.dumps({"generated_client": "ok", "user": str(user.id)}))


if __name__ == "__main__":
    main(sys.argv[1].rstrip("/"))
