"""Ed25519 signatures over the RFC 8785 canonical JSON of a manifest, and device keys."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from wire.errors import WireError


def canonical_json(obj: Mapping[str, Any]) -> bytes:
    """RFC 8785 (JCS) bytes of a JSON object: the exact bytes a signature covers."""
    try:
        return rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise WireError(f"manifest cannot be canonicalised: {exc}") from exc


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(key: Ed25519PublicKey) -> str:
    """'ed25519:' + the first 32 hex digits of the sha256 of the raw 32-byte public key."""
    return "ed25519:" + hashlib.sha256(_raw_public(key)).hexdigest()[:32]


def public_key_from_pem(pem: bytes | str) -> Ed25519PublicKey:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise WireError(f"not a PEM public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise WireError("public key is not Ed25519")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        return public_key_from_pem(path.read_bytes())
    except (OSError, WireError) as exc:
        raise WireError(f"{path}: {exc}") from exc


def public_key_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


class DeviceKey:
    """A device's private signing key."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = private.public_key()
        self.key_id = fingerprint(self.public)

    @classmethod
    def generate(cls) -> DeviceKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> DeviceKey:
        """Deterministic key from a 32-byte seed (test vectors only)."""
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def load(cls, path: Path) -> DeviceKey:
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise WireError(f"{path}: cannot read the device's private key: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise WireError(f"{path}: private key is not Ed25519")
        return cls(key)

    def save(self, private_path: Path, public_path: Path) -> None:
        """Write the key pair; the private key file is created with mode 0600."""
        pem = self._private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        public_path.write_text(public_key_pem(self.public))

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)


def sign_manifest(key: DeviceKey, manifest: Mapping[str, Any]) -> str:
    """Base64 (standard, padded) Ed25519 signature over canonical_json(manifest)."""
    return base64.b64encode(key.sign(canonical_json(manifest))).decode()


def verify_manifest(public: Ed25519PublicKey, manifest: Mapping[str, Any], signature: str) -> bool:
    """True when `signature` is the key's signature over the canonical bytes of `manifest` as received."""
    try:
        canonical = canonical_json(manifest)
    except WireError:
        return False
    return verify_canonical(public, canonical, signature)


def verify_canonical(public: Ed25519PublicKey, canonical: bytes, signature: str) -> bool:
    """Like verify_manifest, for a caller that already holds `canonical_json(manifest)`.

    (The central keeps those bytes too: computing them once saves the pure-Python RFC 8785 pass.)
    """
    try:
        sig = base64.b64decode(signature, validate=True)
        public.verify(sig, canonical)
    except (InvalidSignature, ValueError):
        return False
    return True
