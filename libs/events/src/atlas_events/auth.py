"""Bearer JWT authentication for every ATLAS service: a local Ed25519 key or the issuer's JWKS."""

# No `from __future__ import annotations`: FastAPI reads the Annotated dependencies of the
# closures below at runtime, and a string annotation naming `self` could not be resolved.

import asyncio
import base64
import hashlib
import json
import os
import secrets
import stat
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, Self

import jwt
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi import Depends, FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jwt.exceptions import InvalidSubjectError
from pydantic import BaseModel, Field, model_validator

from atlas_events.errors import AtlasError, error_responses

log = structlog.get_logger(__name__)

DEFAULT_ISSUER = "urn:atlas:local"
DEFAULT_AUDIENCE = "atlas"
LOCAL_ALGORITHMS = ("EdDSA",)
JWKS_ALGORITHMS = ("RS256", "ES256", "EdDSA")
# Keys fetched from the JWKS stay trusted this long; a key the issuer withdraws stops being
# accepted after at most this delay (PyJWT's per-kid LRU cache would keep it forever).
JWKS_CACHE_SECONDS = 300.0
JWKS_FETCH_TIMEOUT_SECONDS = 5.0
# The claims without which a token cannot say who is calling and for how long.
REQUIRED_CLAIMS = ("exp", "iss", "aud", "sub")
RESERVED_CLAIMS = frozenset({"iss", "aud", "sub", "roles", "atlas_id", "iat", "nbf", "exp", "jti"})


class Role(StrEnum):
    """What a token holder may do; staff and managers are scoped to their ATLAS space."""

    AGENT = "agent"
    STAFF = "staff"
    MANAGER = "manager"
    OPS = "ops"
    ADMIN = "admin"
    HR_SYSTEM = "hr_system"


_ROLE_VALUES = frozenset(role.value for role in Role)
STAFF_ROLES = frozenset({Role.STAFF, Role.MANAGER})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as a verified token says: subject, roles and, for staff, their space."""

    sub: str
    roles: frozenset[Role]
    atlas_id: str | None = None
    claims: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def has_role(self, *roles: Role | str) -> bool:
        """True when the principal holds at least one of `roles`."""
        return any(role in self.roles for role in roles)

    @property
    def is_ops(self) -> bool:
        """Ops may read everything."""
        return Role.OPS in self.roles


class AuthError(AtlasError):
    """A request refused by authentication or authorization."""

    status_code = 401


class NotAuthenticated(AuthError):
    """No valid bearer token: missing, malformed, expired, badly signed or from another issuer."""

    status_code = 401

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        detail: Any = None,
        headers: dict[str, str] | None = None,
        invalid_token: bool = False,
    ) -> None:
        # RFC 6750: a missing token gets a bare challenge, a rejected one says why.
        challenge = (
            f'Bearer error="invalid_token", error_description="{message}"'
            if invalid_token
            else "Bearer"
        )
        super().__init__(
            message,
            status_code=status_code,
            detail=detail,
            headers={"WWW-Authenticate": challenge, **(headers or {})},
        )


class Forbidden(AuthError):
    """A valid token whose roles or space do not allow this request."""

    status_code = 403


class AuthUnavailable(AuthError):
    """The issuer's keys cannot be fetched, so no token can be checked right now."""

    status_code = 503


AUTH_RESPONSES = error_responses(NotAuthenticated, Forbidden)
"""OpenAPI `responses=` entries for any endpoint behind a bearer token."""


def default_local_key_path() -> Path:
    """`$ATLAS_HOME/keys/jwt-ed25519.pem`, else under `./.atlas` of the working directory."""
    home = os.environ.get("ATLAS_HOME")
    base = Path(home) if home else Path.cwd() / ".atlas"
    return (base / "keys" / "jwt-ed25519.pem").resolve()


class AuthSettings(BaseModel):
    """How a service checks bearer tokens; embedded in each service's settings."""

    mode: Literal["local", "jwks"] = "local"
    local_key_path: Path = Field(default_factory=default_local_key_path)
    jwks_url: str | None = None
    issuer: str = DEFAULT_ISSUER
    audience: str = DEFAULT_AUDIENCE
    algorithms: list[str] = Field(
        default_factory=list, description="Empty means EdDSA in local mode, RS256/ES256/EdDSA else."
    )
    leeway_seconds: int = Field(30, ge=0)

    @model_validator(mode="after")
    def _complete_for_mode(self) -> Self:
        if not self.algorithms:
            self.algorithms = list(LOCAL_ALGORITHMS if self.mode == "local" else JWKS_ALGORITHMS)
        # Symmetric or absent signatures would let anyone holding the public key mint tokens.
        weak = [a for a in self.algorithms if a.lower() == "none" or a.upper().startswith("HS")]
        if weak:
            raise ValueError(f"algorithms not allowed for bearer tokens: {weak}")
        if self.mode == "jwks" and not self.jwks_url:
            raise ValueError("jwks_url is required when mode is 'jwks'")
        return self


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _read_private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("jwt_key_readable_by_others", path=str(path))
    return key


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalSigningKey:
    """The Ed25519 key, kept in a PEM file, that signs and checks every token in local mode."""

    algorithm = "EdDSA"

    def __init__(
        self,
        private_key: Ed25519PrivateKey,
        *,
        issuer: str = DEFAULT_ISSUER,
        audience: str = DEFAULT_AUDIENCE,
    ) -> None:
        self._private_key = private_key
        self.issuer = issuer
        self.audience = audience

    @classmethod
    def generate(cls, *, issuer: str = DEFAULT_ISSUER, audience: str = DEFAULT_AUDIENCE) -> Self:
        """A fresh key kept only in memory."""
        return cls(Ed25519PrivateKey.generate(), issuer=issuer, audience=audience)

    @classmethod
    def load(
        cls, path: Path | str, *, issuer: str = DEFAULT_ISSUER, audience: str = DEFAULT_AUDIENCE
    ) -> Self:
        """The key stored at `path`; FileNotFoundError when there is none."""
        return cls(_read_private_key(Path(path)), issuer=issuer, audience=audience)

    @classmethod
    def load_or_create(
        cls, path: Path | str, *, issuer: str = DEFAULT_ISSUER, audience: str = DEFAULT_AUDIENCE
    ) -> Self:
        """The key at `path`, created (mode 0600) if missing; concurrent creators agree on one."""
        path = Path(path)
        try:
            return cls.load(path, issuer=issuer, audience=audience)
        except FileNotFoundError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        private_key = Ed25519PrivateKey.generate()
        pem = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
                out.flush()
                os.fsync(out.fileno())
            # Publishing a complete file under the final name is atomic and refuses to
            # overwrite: of several services starting at once, the first link wins and the
            # others read the winner's key, never a half-written file.
            try:
                os.link(tmp, path)
            except FileExistsError:
                return cls.load(path, issuer=issuer, audience=audience)
            _fsync_dir(path.parent)
            log.info("jwt_key_created", path=str(path))
            return cls(private_key, issuer=issuer, audience=audience)
        finally:
            tmp.unlink(missing_ok=True)

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._private_key.public_key()

    def public_jwk(self) -> dict[str, str]:
        """The public key as a JWK, with its RFC 7638 thumbprint as `kid`."""
        x = _b64url(
            self.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        )
        # RFC 7638: the thumbprint hashes the required members in lexicographic order.
        canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"))
        kid = _b64url(hashlib.sha256(canonical.encode()).digest())
        return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "use": "sig", "alg": "EdDSA"}

    @property
    def key_id(self) -> str:
        return self.public_jwk()["kid"]

    def issue(
        self,
        sub: str,
        roles: Iterable[Role | str],
        atlas_id: str | None = None,
        ttl: timedelta = timedelta(hours=8),
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """A signed token for `sub` with `roles` (and the staff's `atlas_id`), valid for `ttl`."""
        role_names = sorted({Role(role).value for role in roles})
        clash = RESERVED_CLAIMS.intersection(extra or {})
        if clash:
            raise ValueError(f"extra claims may not override {sorted(clash)}")
        now = datetime.now(UTC)
        claims: dict[str, Any] = {
            **(extra or {}),
            "iss": self.issuer,
            "aud": self.audience,
            "sub": sub,
            "roles": role_names,
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "jti": str(uuid.uuid4()),
        }
        if atlas_id is not None:
            claims["atlas_id"] = atlas_id
        return jwt.encode(
            claims, self._private_key, algorithm=self.algorithm, headers={"kid": self.key_id}
        )


# Checked in this order; the first match names the reason given to the caller.
_REFUSALS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.InvalidSignatureError, "bad signature"),
    (jwt.InvalidIssuerError, "wrong issuer"),
    (jwt.InvalidAudienceError, "wrong audience"),
    (jwt.InvalidAlgorithmError, "algorithm not allowed"),
    (InvalidSubjectError, "malformed token: sub must be a string"),
    (jwt.InvalidIssuedAtError, "malformed token: iat must be a number"),
    (jwt.DecodeError, "malformed token"),
)


class PrincipalVerifier(Protocol):
    """What the FastAPI dependencies need: turn a bearer token into a Principal or refuse it."""

    async def verify(self, token: str) -> Principal: ...


class TokenVerifier:
    """Checks bearer tokens (signature, expiry, issuer, audience, claims) and names the caller."""

    def __init__(self, settings: AuthSettings, *, local_key: LocalSigningKey | None = None) -> None:
        self.settings = settings
        self._public_key: Ed25519PublicKey | None = None
        self._jwks: jwt.PyJWKClient | None = None
        if settings.mode == "local":
            key = local_key or LocalSigningKey.load_or_create(
                settings.local_key_path, issuer=settings.issuer, audience=settings.audience
            )
            self._public_key = key.public_key
        else:
            assert settings.jwks_url is not None  # the settings validator guarantees it
            self._jwks = jwt.PyJWKClient(
                settings.jwks_url,
                cache_keys=False,
                cache_jwk_set=True,
                lifespan=JWKS_CACHE_SECONDS,
                timeout=JWKS_FETCH_TIMEOUT_SECONDS,
            )

    async def verify(self, token: str) -> Principal:
        """The principal a valid token names; NotAuthenticated (401) saying why otherwise."""
        key: Ed25519PublicKey | jwt.PyJWK
        if self._jwks is not None:
            key = await self._jwks_key(self._jwks, token)
        else:
            assert self._public_key is not None
            key = self._public_key
        return self._decode(token, key)

    async def _jwks_key(self, client: jwt.PyJWKClient, token: str) -> jwt.PyJWK:
        # Refuse garbage before it can make us contact the issuer.
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise NotAuthenticated("malformed token", invalid_token=True) from exc
        if header.get("alg") not in self.settings.algorithms:
            raise NotAuthenticated("algorithm not allowed", invalid_token=True)
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise NotAuthenticated("malformed token: no kid header", invalid_token=True)
        try:
            # A fetch is blocking urllib I/O: keep it off the event loop.
            return await asyncio.to_thread(client.get_signing_key, kid)
        except (jwt.PyJWKClientConnectionError, jwt.PyJWKSetError) as exc:
            log.warning("jwks_unavailable", url=client.uri, error=str(exc))
            raise AuthUnavailable("the token issuer's keys cannot be fetched") from exc
        except jwt.PyJWKClientError as exc:
            raise NotAuthenticated("unknown signing key", invalid_token=True) from exc

    def _decode(self, token: str, key: Ed25519PublicKey | jwt.PyJWK) -> Principal:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=self.settings.algorithms,
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=self.settings.leeway_seconds,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.MissingRequiredClaimError as exc:
            raise NotAuthenticated(f"missing claim: {exc.claim}", invalid_token=True) from exc
        except jwt.PyJWTError as exc:
            reason = next((r for kind, r in _REFUSALS if isinstance(exc, kind)), "invalid token")
            raise NotAuthenticated(reason, invalid_token=True) from exc
        return _principal_from(claims)


def _principal_from(claims: dict[str, Any]) -> Principal:
    sub = claims["sub"]
    if not sub:
        raise NotAuthenticated("malformed token: empty sub", invalid_token=True)
    raw_roles = claims.get("roles")
    if raw_roles is None:
        raise NotAuthenticated("missing claim: roles", invalid_token=True)
    if isinstance(raw_roles, str):  # some issuers write a space-separated string
        raw_roles = raw_roles.split()
    if not isinstance(raw_roles, list) or not all(isinstance(r, str) for r in raw_roles):
        raise NotAuthenticated("malformed token: roles must be a list", invalid_token=True)
    # Roles this platform does not know (another application's) grant nothing here.
    roles = frozenset(Role(r) for r in raw_roles if r in _ROLE_VALUES)
    atlas_id = claims.get("atlas_id")
    if isinstance(atlas_id, int) and not isinstance(atlas_id, bool):
        atlas_id = str(atlas_id)
    if atlas_id is not None and not isinstance(atlas_id, str):
        raise NotAuthenticated("malformed token: atlas_id must be a string", invalid_token=True)
    return Principal(sub=sub, roles=roles, atlas_id=atlas_id or None, claims=claims)


def ensure_staff_of(principal: Principal, atlas_id: str | None, *, allow_ops: bool = True) -> None:
    """Let ops through, and staff or managers whose token names the space `atlas_id`; else 403."""
    if allow_ops and principal.is_ops:
        return
    if not principal.has_role(*STAFF_ROLES):
        raise Forbidden("requires role staff or manager of this ATLAS space")
    if principal.atlas_id is None:
        raise Forbidden("the token names no atlas_id, so it is scoped to no ATLAS space")
    if atlas_id is None or principal.atlas_id != atlas_id:
        raise Forbidden(f"the token is scoped to ATLAS space {principal.atlas_id!r} only")


def ensure_agent_or_ops(principal: Principal, agent_id: str) -> None:
    """Let ops through, and an agent reading their own data (`sub` is `agent_id`); else 403."""
    if principal.is_ops:
        return
    if principal.has_role(Role.AGENT) and principal.sub == agent_id:
        return
    raise Forbidden("an agent may only read their own data")


_bearer = HTTPBearer(
    auto_error=False,
    description="A JWT from the ATLAS issuer; in local mode, `atlas token --role ops` prints one.",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
PrincipalDependency = Callable[..., Awaitable[Principal]]


class Auth:
    """FastAPI dependencies for one app; the verifier is read from `app.state.auth` per request."""

    def __init__(self, verifier: PrincipalVerifier | None = None) -> None:
        self.verifier = verifier

    def install(self, app: FastAPI, verifier: PrincipalVerifier | None = None) -> None:
        """Put the verifier where the dependencies look for it (tests may swap it later)."""
        chosen = verifier or self.verifier
        if chosen is None:
            raise ValueError("Auth.install needs a verifier")
        app.state.auth = chosen

    def verifier_for(self, request: Request) -> PrincipalVerifier:
        verifier: PrincipalVerifier | None = getattr(request.app.state, "auth", None)
        verifier = verifier or self.verifier
        if verifier is None:
            raise AtlasError("authentication is not configured on this service", status_code=500)
        return verifier

    async def principal(self, request: Request, credentials: Credentials) -> Principal:
        """The authenticated caller; 401 with a `WWW-Authenticate: Bearer` challenge otherwise."""
        if credentials is None:
            scheme = request.headers.get("authorization", "").strip().partition(" ")[0]
            if scheme and scheme.lower() != "bearer":
                raise NotAuthenticated("authorization scheme must be Bearer")
            raise NotAuthenticated("missing bearer token")
        principal = await self.verifier_for(request).verify(credentials.credentials)
        # Middleware and handlers downstream may want to know who acted.
        request.state.principal = principal
        return principal

    def require(self, *roles: Role, allow_ops: bool = True) -> PrincipalDependency:
        """A dependency letting through holders of any of `roles` (and ops, unless told not to)."""
        if not roles:
            raise ValueError("require() needs at least one role; use auth.principal for any caller")
        wanted = frozenset(roles)
        names = " or ".join(sorted(wanted))

        async def require_role(
            principal: Annotated[Principal, Depends(self.principal)],
        ) -> Principal:
            if principal.has_role(*wanted) or (allow_ops and principal.is_ops):
                return principal
            raise Forbidden(f"requires role {names}")

        return require_role

    def staff_of(
        self, atlas_id_param: str = "atlas_id", *, allow_ops: bool = True
    ) -> PrincipalDependency:
        """A dependency letting through ops, and staff or managers of the space requested."""

        async def require_staff_of(
            request: Request, principal: Annotated[Principal, Depends(self.principal)]
        ) -> Principal:
            atlas_id = request.path_params.get(atlas_id_param)
            if atlas_id is None:
                atlas_id = request.query_params.get(atlas_id_param)
            ensure_staff_of(principal, atlas_id, allow_ops=allow_ops)
            return principal

        return require_staff_of


class CachingVerifier:
    """Remembers verified tokens until they expire (at most `ttl` seconds): a signature check
    costs more than most endpoints, and gateways send the same token many times."""

    def __init__(self, inner: PrincipalVerifier, *, ttl: float = 60.0, size: int = 4096) -> None:
        self.inner = inner
        self.ttl = ttl
        self.size = size
        self._cache: OrderedDict[str, tuple[float, Principal]] = OrderedDict()

    async def verify(self, token: str) -> Principal:
        """The cached principal while fresh, else the inner verifier's (refusals never cached)."""
        now = time.time()
        hit = self._cache.get(token)
        if hit is not None and hit[0] > now:
            self._cache.move_to_end(token)
            return hit[1]
        principal = await self.inner.verify(token)
        expires = principal.claims.get("exp")
        until = now + self.ttl
        if isinstance(expires, int | float) and not isinstance(expires, bool):
            until = min(until, float(expires))
        self._cache[token] = (until, principal)
        self._cache.move_to_end(token)
        while len(self._cache) > self.size:
            self._cache.popitem(last=False)
        return principal


auth = Auth()
"""The dependencies every service declares its routes with; each app installs its own verifier."""

CurrentPrincipal = Annotated[Principal, Depends(auth.principal)]
require_roles = auth.require
staff_of = auth.staff_of
