"""The token cache of every service: a verified token is reused until it expires; refusals never."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from atlas_events.auth import (
    AuthSettings,
    CachingVerifier,
    LocalSigningKey,
    NotAuthenticated,
    Role,
    TokenVerifier,
)


class CountingVerifier:
    def __init__(self, inner: TokenVerifier) -> None:
        self.inner = inner
        self.calls = 0

    async def verify(self, token: str):  # type: ignore[no-untyped-def]
        self.calls += 1
        return await self.inner.verify(token)


@pytest.fixture
def key(tmp_path: Path) -> LocalSigningKey:
    return LocalSigningKey.load_or_create(tmp_path / "jwt.pem")


@pytest.fixture
def counting(key: LocalSigningKey, tmp_path: Path) -> CountingVerifier:
    settings = AuthSettings.model_validate({"local_key_path": tmp_path / "jwt.pem"})
    return CountingVerifier(TokenVerifier(settings, local_key=key))


async def test_valid_token_is_verified_once(
    key: LocalSigningKey, counting: CountingVerifier
) -> None:
    cache = CachingVerifier(counting)
    token = key.issue("agent-1", [Role.AGENT])
    first = await cache.verify(token)
    second = await cache.verify(token)
    assert first == second
    assert first.sub == "agent-1"
    assert counting.calls == 1


async def test_refusals_and_expired_tokens_are_not_served(
    key: LocalSigningKey, counting: CountingVerifier
) -> None:
    cache = CachingVerifier(counting, ttl=60)
    forged = LocalSigningKey.generate().issue("x", [Role.OPS])
    for _ in range(2):
        with pytest.raises(NotAuthenticated):
            await cache.verify(forged)
    assert counting.calls == 2
    # A token about to expire is cached only until its exp claim.
    short = key.issue("agent-2", [Role.AGENT], ttl=timedelta(seconds=1))
    await cache.verify(short)
    expires = cache._cache[short][0]
    assert expires <= (await counting.inner.verify(short)).claims["exp"]


async def test_cache_is_bounded(key: LocalSigningKey, counting: CountingVerifier) -> None:
    cache = CachingVerifier(counting, size=3)
    tokens = [key.issue(f"a{n}", [Role.AGENT]) for n in range(5)]
    for token in tokens:
        await cache.verify(token)
    assert len(cache._cache) == 3
    await cache.verify(tokens[0])  # evicted, so verified again
    assert counting.calls == 6
