"""Envelope encryption: per-document data keys, chunked AES-256-GCM, key-encryption keys."""
