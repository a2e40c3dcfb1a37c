"""Errors the vault service answers on purpose (rendered by the shared handler)."""

from atlas_events.errors import AtlasError


class VaultError(AtlasError):
    """Base of the vault service's errors."""


class DocumentNotFound(VaultError):
    """No such document, or not one the caller may know about."""

    status_code = 404


class GrantNotFound(VaultError):
    """No such grant on a document of the caller."""

    status_code = 404


class AccessDenied(VaultError):
    """The caller's role or grants do not allow this on the document."""

    status_code = 403


class DigestMismatch(VaultError):
    """The uploaded bytes do not hash to the SHA-256 the client announced; nothing was stored."""

    status_code = 422


class InvalidGrant(VaultError):
    """The grant asked for is not acceptable (expiry, grantee, request)."""

    status_code = 422


class MalwareDetected(VaultError):
    """The upload carries malware: it was rejected, its key destroyed, and the refusal journaled."""

    status_code = 422


class QuotaExceeded(VaultError):
    """Storing this document would exceed the owner's quota of plaintext bytes."""

    status_code = 413


class DocumentTooLarge(VaultError):
    """The document is larger than the vault accepts for one document."""

    status_code = 413


class DocumentNotAvailable(VaultError):
    """The document exists but cannot be served or shared in its status."""

    status_code = 409


class DocumentNotScanned(DocumentNotAvailable):
    """The document is still quarantined: not scanned yet, so it cannot be read or shared."""


class DocumentCorrupted(DocumentNotAvailable):
    """The stored ciphertext failed verification; corrupted bytes are never served."""


class DocumentDestroyed(VaultError):
    """The document was destroyed: its data key no longer exists."""

    status_code = 410


class KeyRetirementRefused(VaultError):
    """Documents are still wrapped under a KEK version that would be retired."""

    status_code = 409


class KmsUnavailable(VaultError):
    """The key management service refused or could not be reached."""

    status_code = 503
