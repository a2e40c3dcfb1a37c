"""Bearer JWT authentication: real keys, a real FastAPI app, a real JWKS server."""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Annotated, Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends, FastAPI

import atlas_events.auth as auth_module
from atlas_events.auth import (
    Auth,
    AuthSettings,
    LocalSigningKey,
    NotAuthenticated,
    Principal,
    Role,
    TokenVerifier,
    ensure_agent_or_ops,
)
from atlas_events.errors import install_error_handlers

# ---------------------------------------------------------------------------- the test app


def create_app(verifier: TokenVerifier) -> FastAPI:
    """A small service guarded the way the real ones are."""
    auth = Auth()
    app = FastAPI()
    install_error_handlers(app)
    auth.install(app, verifier)
    current_principal = Annotated[Principal, Depends(auth.principal)]

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/me")
    async def me(principal: current_principal) -> dict[str, Any]:
        return {
            "sub": principal.sub,
            "roles": sorted(principal.roles),
            "atlas_id": principal.atlas_id,
        }

    @app.get("/ops/dlq")
    async def dlq(principal: Annotated[Principal, Depends(auth.require(Role.OPS))]) -> str:
        return principal.sub

    @app.get("/reports")
    async def reports(principal: Annotated[Principal, Depends(auth.require(Role.MANAGER))]) -> str:
        return principal.sub

    @app.post("/admin/crisis")
    async def crisis(
        principal: Annotated[Principal, Depends(auth.require(Role.ADMIN, allow_ops=False))],
    ) -> str:
        return principal.sub

    @app.get("/spaces/{atlas_id}/queue")
    async def space_queue(
        atlas_id: str, principal: Annotated[Principal, Depends(auth.staff_of())]
    ) -> str:
        return atlas_id

    @app.get("/queue")
    async def queue_by_query(
        space: str, principal: Annotated[Principal, Depends(auth.staff_of("space"))]
    ) -> str:
        return space

    @app.get("/agents/{agent_id}/dossiers")
    async def dossiers(agent_id: str, principal: current_principal) -> str:
        ensure_agent_or_ops(principal, agent_id)
        return agent_id

    return app


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def private_key_of(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hmac_token(claims: dict[str, Any], secret: bytes, kid: str | None = None) -> str:
    """The classic key-confusion forgery: HS256 keyed with the verifier's public key."""
    header = {"alg": "HS256", "typ": "JWT", **({"kid": kid} if kid else {})}
    body = json.dumps(claims, default=lambda moment: int(moment.timestamp()))
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(body.encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(signature)}"


def claims_for(**overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "iss": "urn:atlas:local",
        "aud": "atlas",
        "sub": "agent-1",
        "roles": ["agent"],
        "iat": now,
        "exp": now + timedelta(minutes=10),
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "jwt-ed25519.pem"


@pytest.fixture
def signing_key(key_path: Path) -> LocalSigningKey:
    return LocalSigningKey.load_or_create(key_path)


@pytest.fixture
def verifier(key_path: Path, signing_key: LocalSigningKey) -> TokenVerifier:
    return TokenVerifier(AuthSettings(local_key_path=key_path))


@pytest.fixture
def app(verifier: TokenVerifier) -> FastAPI:
    return create_app(verifier)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
        yield http


# ---------------------------------------------------------------------------- settings


def test_settings_pick_algorithms_by_mode() -> None:
    assert AuthSettings().algorithms == ["EdDSA"]
    jwks = AuthSettings(mode="jwks", jwks_url="https://idp.example/jwks.json")
    assert jwks.algorithms == ["RS256", "ES256", "EdDSA"]


@pytest.mark.parametrize("algorithm", ["HS256", "none"])
def test_settings_refuse_symmetric_or_absent_signatures(algorithm: str) -> None:
    with pytest.raises(ValueError, match="not allowed"):
        AuthSettings(algorithms=[algorithm])


def test_settings_in_jwks_mode_need_a_url() -> None:
    with pytest.raises(ValueError, match="jwks_url"):
        AuthSettings(mode="jwks")


def test_default_key_path_follows_atlas_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATLAS_HOME", str(tmp_path / "home"))
    assert AuthSettings().local_key_path == tmp_path / "home" / "keys" / "jwt-ed25519.pem"
    monkeypatch.delenv("ATLAS_HOME")
    monkeypatch.chdir(tmp_path)
    assert AuthSettings().local_key_path == tmp_path / ".atlas" / "keys" / "jwt-ed25519.pem"


# ---------------------------------------------------------------------------- local key


def test_load_or_create_writes_a_private_file_once(key_path: Path) -> None:
    first = LocalSigningKey.load_or_create(key_path)
    again = LocalSigningKey.load_or_create(key_path)
    assert first.key_id == again.key_id
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert [p.name for p in key_path.parent.iterdir()] == [key_path.name]


_RACER = """
import sys
from atlas_events.auth import LocalSigningKey
print("ready", flush=True)
sys.stdin.readline()
print(LocalSigningKey.load_or_create(sys.argv[1]).key_id, flush=True)
"""


def _child_env() -> dict[str, str]:
    src = str(Path(auth_module.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}


def test_processes_starting_together_agree_on_one_key(key_path: Path) -> None:
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, str(key_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=_child_env(),
        )
        for _ in range(8)
    ]
    try:
        # Release them all at once, after each has paid its import time.
        for racer in racers:
            assert racer.stdout is not None
            assert racer.stdout.readline().strip() == "ready"
        for racer in racers:
            assert racer.stdin is not None
            racer.stdin.write("go\n")
            racer.stdin.flush()
        outputs = [racer.communicate(timeout=60)[0].strip().splitlines() for racer in racers]
    finally:
        for racer in racers:
            racer.kill()
    assert all(racer.returncode == 0 for racer in racers)
    # Unconfigured structlog logs to stdout: the creation line, then the key id.
    assert {lines[-1] for lines in outputs} == {LocalSigningKey.load(key_path).key_id}
    assert sum("jwt_key_created" in line for lines in outputs for line in lines) == 1
    assert [p.name for p in key_path.parent.iterdir()] == [key_path.name]
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600


def test_issue_refuses_to_override_reserved_claims(signing_key: LocalSigningKey) -> None:
    with pytest.raises(ValueError, match="roles"):
        signing_key.issue("x", [Role.AGENT], extra={"roles": ["ops"]})


# ---------------------------------------------------------------------------- authentication


async def test_valid_token_names_the_caller(
    client: httpx.AsyncClient, signing_key: LocalSigningKey
) -> None:
    token = signing_key.issue("staff-7", [Role.STAFF, Role.MANAGER], atlas_id="ATLAS-BREST")
    response = await client.get("/me", headers=bearer(token))
    assert response.status_code == 200
    assert response.json() == {
        "sub": "staff-7",
        "roles": ["manager", "staff"],
        "atlas_id": "ATLAS-BREST",
    }


async def test_health_needs_no_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code == 200


async def test_missing_header_is_401_with_a_bearer_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get("/me")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json() == {"error": "NotAuthenticated", "detail": "missing bearer token"}


async def test_other_scheme_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/me", headers={"Authorization": "Basic b3BzOm9wcw=="})
    assert response.status_code == 401
    assert response.json()["detail"] == "authorization scheme must be Bearer"


async def test_expired_token_is_401_token_expired(
    client: httpx.AsyncClient, signing_key: LocalSigningKey
) -> None:
    token = signing_key.issue("agent-1", [Role.AGENT], ttl=-timedelta(minutes=5))
    response = await client.get("/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.json() == {"error": "NotAuthenticated", "detail": "token expired"}
    assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


async def test_token_just_expired_is_within_leeway(
    client: httpx.AsyncClient, signing_key: LocalSigningKey
) -> None:
    token = signing_key.issue("agent-1", [Role.AGENT], ttl=-timedelta(seconds=5))
    assert (await client.get("/me", headers=bearer(token))).status_code == 200


async def test_token_signed_by_another_key_is_401(client: httpx.AsyncClient) -> None:
    token = LocalSigningKey.generate().issue("ops-1", [Role.OPS])
    response = await client.get("/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["detail"] == "bad signature"


@pytest.mark.parametrize(
    ("issuer", "audience", "reason"),
    [
        ("urn:someone:else", "atlas", "wrong issuer"),
        ("urn:atlas:local", "billing", "wrong audience"),
    ],
)
async def test_token_for_another_issuer_or_audience_is_401(
    client: httpx.AsyncClient, key_path: Path, issuer: str, audience: str, reason: str
) -> None:
    same_key_elsewhere = LocalSigningKey.load(key_path, issuer=issuer, audience=audience)
    token = same_key_elsewhere.issue("ops-1", [Role.OPS])
    response = await client.get("/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["detail"] == reason


@pytest.mark.parametrize(
    ("drop", "reason"),
    [
        ("roles", "missing claim: roles"),
        ("exp", "missing claim: exp"),
        ("sub", "missing claim: sub"),
    ],
)
async def test_token_missing_a_required_claim_is_401(
    client: httpx.AsyncClient, key_path: Path, drop: str, reason: str
) -> None:
    token = jwt.encode(claims_for(**{drop: None}), private_key_of(key_path), algorithm="EdDSA")
    response = await client.get("/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["detail"] == reason


async def test_unknown_roles_are_ignored(client: httpx.AsyncClient, key_path: Path) -> None:
    claims = claims_for(roles=["ops", "wizard"])
    token = jwt.encode(claims, private_key_of(key_path), algorithm="EdDSA")
    response = await client.get("/me", headers=bearer(token))
    assert response.status_code == 200
    assert response.json()["roles"] == ["ops"]


async def test_malformed_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/me", headers=bearer("not.a.token"))
    assert response.status_code == 401
    assert response.json()["detail"] == "malformed token"


async def test_unsigned_token_is_401(client: httpx.AsyncClient) -> None:
    token = jwt.encode(claims_for(roles=["ops"]), "", algorithm="none")
    response = await client.get("/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["detail"] == "algorithm not allowed"


async def test_token_hmac_signed_with_the_public_key_is_401(
    client: httpx.AsyncClient, signing_key: LocalSigningKey
) -> None:
    public_pem = signing_key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = hmac_token(claims_for(roles=["ops"]), public_pem)
    response = await client.get("/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["detail"] == "algorithm not allowed"


async def test_the_verifier_is_read_from_app_state(
    app: FastAPI, client: httpx.AsyncClient, signing_key: LocalSigningKey, tmp_path: Path
) -> None:
    token = signing_key.issue("ops-1", [Role.OPS])
    assert (await client.get("/me", headers=bearer(token))).status_code == 200
    app.state.auth = TokenVerifier(AuthSettings(local_key_path=tmp_path / "other" / "key.pem"))
    assert (await client.get("/me", headers=bearer(token))).status_code == 401


# ---------------------------------------------------------------------------- authorization


async def _status(
    client: httpx.AsyncClient, key: LocalSigningKey, method: str, url: str, **token_args: Any
) -> int:
    sub = token_args.pop("sub", "someone")
    response = await client.request(method, url, headers=bearer(key.issue(sub, **token_args)))
    return response.status_code


async def test_wrong_role_is_403_with_a_json_reason(
    client: httpx.AsyncClient, signing_key: LocalSigningKey
) -> None:
    response = await client.get(
        "/ops/dlq", headers=bearer(signing_key.issue("agent-1", [Role.AGENT]))
    )
    assert response.status_code == 403
    assert response.json() == {"error": "Forbidden", "detail": "requires role ops"}


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        ([Role.MANAGER], 200),
        ([Role.OPS], 200),
        ([Role.STAFF], 403),
        ([Role.AGENT], 403),
        ([Role.HR_SYSTEM], 403),
        ([], 403),
    ],
)
async def test_require_lets_the_role_and_ops_read(
    client: httpx.AsyncClient, signing_key: LocalSigningKey, roles: list[Role], expected: int
) -> None:
    status = await _status(client, signing_key, "GET", "/reports", roles=roles, atlas_id="A1")
    assert status == expected


@pytest.mark.parametrize(("roles", "expected"), [([Role.ADMIN], 200), ([Role.OPS], 403)])
async def test_require_can_refuse_ops(
    client: httpx.AsyncClient, signing_key: LocalSigningKey, roles: list[Role], expected: int
) -> None:
    assert await _status(client, signing_key, "POST", "/admin/crisis", roles=roles) == expected


@pytest.mark.parametrize(
    ("roles", "atlas_id", "expected"),
    [
        ([Role.STAFF], "ATLAS-BREST", 200),
        ([Role.MANAGER], "ATLAS-BREST", 200),
        ([Role.STAFF], "ATLAS-TOULON", 403),
        ([Role.MANAGER], "ATLAS-TOULON", 403),
        ([Role.STAFF], None, 403),
        ([Role.AGENT], "ATLAS-BREST", 403),
        ([Role.ADMIN], "ATLAS-BREST", 403),
        ([Role.OPS], None, 200),
    ],
)
@pytest.mark.parametrize("url", ["/spaces/ATLAS-BREST/queue", "/queue?space=ATLAS-BREST"])
async def test_staff_see_only_their_space(
    client: httpx.AsyncClient,
    signing_key: LocalSigningKey,
    url: str,
    roles: list[Role],
    atlas_id: str | None,
    expected: int,
) -> None:
    status = await _status(client, signing_key, "GET", url, roles=roles, atlas_id=atlas_id)
    assert status == expected


@pytest.mark.parametrize(
    ("sub", "roles", "expected"),
    [
        ("agent-1", [Role.AGENT], 200),
        ("agent-2", [Role.AGENT], 403),
        ("agent-1", [Role.STAFF], 403),
        ("ops-cli", [Role.OPS], 200),
    ],
)
async def test_an_agent_sees_only_their_own(
    client: httpx.AsyncClient,
    signing_key: LocalSigningKey,
    sub: str,
    roles: list[Role],
    expected: int,
) -> None:
    url = "/agents/agent-1/dossiers"
    assert await _status(client, signing_key, "GET", url, sub=sub, roles=roles) == expected


def test_require_needs_a_role() -> None:
    with pytest.raises(ValueError, match="at least one role"):
        Auth().require()


# ---------------------------------------------------------------------------- JWKS mode


class _JwksServer(ThreadingHTTPServer):
    jwks: dict[str, Any]
    hits: int
    gate: threading.Event | None
    arrived: threading.Event
    released: list[bool]


class _JwksHandler(BaseHTTPRequestHandler):
    server: _JwksServer

    def do_GET(self) -> None:
        self.server.hits += 1
        if self.server.gate is not None:
            self.server.arrived.set()
            self.server.released.append(self.server.gate.wait(timeout=5))
        body = json.dumps(self.server.jwks).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Issuer:
    """An identity provider: RSA and EC signing keys published as a JWKS over real HTTP."""

    issuer = "https://idp.defense.test"

    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        rsa_jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa.public_key(), as_dict=True)
        ec_jwk = jwt.algorithms.ECAlgorithm.to_jwk(self.ec.public_key(), as_dict=True)
        self.jwks = {
            "keys": [
                {**rsa_jwk, "kid": "rsa-1", "use": "sig", "alg": "RS256"},
                {**ec_jwk, "kid": "ec-1", "use": "sig", "alg": "ES256"},
            ]
        }
        self.server = _JwksServer(("127.0.0.1", 0), _JwksHandler)
        self.server.jwks = self.jwks
        self.server.hits = 0
        self.server.gate = None
        self.server.arrived = threading.Event()
        self.server.released = []
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"

    def settings(self) -> AuthSettings:
        return AuthSettings(mode="jwks", jwks_url=self.url, issuer=self.issuer)

    def token(
        self, algorithm: str = "RS256", kid: str = "rsa-1", key: Any = None, **claims: Any
    ) -> str:
        key = key or (self.rsa if algorithm == "RS256" else self.ec)
        payload = claims_for(**{"iss": self.issuer, **claims})
        return jwt.encode(payload, key, algorithm=algorithm, headers={"kid": kid})


@pytest.fixture
def idp() -> Iterator[Issuer]:
    issuer = Issuer()
    thread = threading.Thread(target=issuer.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield issuer
    issuer.server.shutdown()
    issuer.server.server_close()
    thread.join(timeout=5)


@pytest.mark.parametrize(("algorithm", "kid"), [("RS256", "rsa-1"), ("ES256", "ec-1")])
async def test_jwks_accepts_tokens_signed_by_the_issuer(
    idp: Issuer, algorithm: str, kid: str
) -> None:
    verifier = TokenVerifier(idp.settings())
    token = idp.token(algorithm, kid, sub="staff-3", roles=["staff"], atlas_id="ATLAS-LYON")
    principal = await verifier.verify(token)
    assert principal == Principal("staff-3", frozenset({Role.STAFF}), "ATLAS-LYON")


async def test_jwks_token_guards_a_real_app(idp: Issuer) -> None:
    app = create_app(TokenVerifier(idp.settings()))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
        token = idp.token(roles=["staff"], atlas_id="ATLAS-LYON")
        own = await http.get("/spaces/ATLAS-LYON/queue", headers=bearer(token))
        other = await http.get("/spaces/ATLAS-BREST/queue", headers=bearer(token))
    assert (own.status_code, other.status_code) == (200, 403)


async def test_jwks_keys_are_fetched_once_and_cached(idp: Issuer) -> None:
    verifier = TokenVerifier(idp.settings())
    for n in range(5):
        await verifier.verify(idp.token(sub=f"agent-{n}"))
    assert idp.server.hits == 1


@pytest.mark.parametrize(
    ("make_token", "reason"),
    [
        (
            lambda i: i.token(key=rsa.generate_private_key(public_exponent=65537, key_size=2048)),
            "bad signature",
        ),
        (lambda i: i.token(kid="rsa-unknown"), "unknown signing key"),
        (lambda i: i.token(iss="https://evil.test"), "wrong issuer"),
        (lambda i: i.token(exp=datetime.now(UTC) - timedelta(hours=1)), "token expired"),
        (
            lambda i: LocalSigningKey.generate(issuer=i.issuer).issue("x", ["ops"]),
            "unknown signing key",
        ),
        # A JWKS key for RS256 cannot verify a token claiming ES256, even under its kid.
        (lambda i: i.token("ES256", kid="rsa-1"), "algorithm not allowed"),
    ],
    ids=["other-key", "unknown-kid", "other-issuer", "expired", "local-key", "alg-swap"],
)
async def test_jwks_refuses_other_tokens(idp: Issuer, make_token: Any, reason: str) -> None:
    verifier = TokenVerifier(idp.settings())
    with pytest.raises(NotAuthenticated) as refused:
        await verifier.verify(make_token(idp))
    assert refused.value.message == reason
    assert refused.value.status_code == 401


async def test_jwks_refuses_hmac_before_contacting_the_issuer(idp: Issuer) -> None:
    public_pem = idp.rsa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = hmac_token(claims_for(iss=idp.issuer, roles=["ops"]), public_pem, kid="rsa-1")
    with pytest.raises(NotAuthenticated, match="algorithm not allowed"):
        await TokenVerifier(idp.settings()).verify(token)
    assert idp.server.hits == 0


async def test_jwks_fetch_does_not_block_the_event_loop(idp: Issuer) -> None:
    # The server holds its answer until this coroutine runs: a blocked loop would time it out.
    idp.server.gate = threading.Event()
    verifier = TokenVerifier(idp.settings())
    verifying = asyncio.create_task(verifier.verify(idp.token()))
    assert await asyncio.to_thread(idp.server.arrived.wait, 5)
    idp.server.gate.set()
    principal = await asyncio.wait_for(verifying, timeout=10)
    assert principal.sub == "agent-1"
    assert idp.server.released == [True]


async def test_unreachable_jwks_is_503_not_500() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = AuthSettings(mode="jwks", jwks_url=f"http://127.0.0.1:{port}/jwks.json")
    app = create_app(TokenVerifier(settings))
    token = jwt.encode(
        claims_for(), rsa.generate_private_key(65537, 2048), "RS256", headers={"kid": "k"}
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
        response = await http.get("/me", headers=bearer(token))
    assert response.status_code == 503
    assert response.json()["error"] == "AuthUnavailable"
