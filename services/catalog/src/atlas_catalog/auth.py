"""Authentication and scoping dependencies of the catalog service (the shared JWT verifier)."""

import time
from collections import OrderedDict

from atlas_events.auth import (
    CurrentPrincipal,
    Principal,
    PrincipalVerifier,
    Role,
    require_roles,
    staff_of,
)

__all__ = [
    "CachingVerifier",
    "CurrentPrincipal",
    "Principal",
    "Role",
    "require_roles",
    "staff_of",
]


class CachingVerifier:
    """Remembers verified tokens until they expire (at most `ttl` seconds): search is called far
    more often than tokens change, and a signature check costs more than the search itself."""

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
