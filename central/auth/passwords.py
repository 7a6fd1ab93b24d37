"""Salted password hashes: argon2id (argon2-cffi, RFC 9106 low-memory profile: 64 MiB, t=3, p=4).

The encoded hash carries its own salt and parameters, so raising the cost later only needs
`needs_rehash` at the next successful sign-in.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = [
    "MAX_PASSWORD_CHARS",
    "MIN_PASSWORD_CHARS",
    "PasswordPolicyError",
    "check_password_policy",
    "configure_hashing",
    "dummy_verify",
    "hash_password",
    "needs_rehash",
    "verify_password",
]

MIN_PASSWORD_CHARS = 10
# argon2 takes any length, but a megabyte "password" per sign-in attempt is a cheap DoS.
MAX_PASSWORD_CHARS = 1024

_HASHER = PasswordHasher()
# Verified against when the user does not exist, so a missing user costs the same time as a
# wrong password and sign-in timing does not tell which usernames exist. Made at first use.
_DUMMY_HASH: str | None = None


def configure_hashing(*, time_cost: int = 3, memory_cost_kib: int = 65536, parallelism: int = 4) -> None:
    """Set the argon2id cost of new hashes (the defaults are RFC 9106's low-memory profile).

    Existing hashes keep their own parameters and are re-hashed at the next successful sign-in.
    Tests lower the cost so that a test costs milliseconds, not half a second per hash.
    """
    global _HASHER, _DUMMY_HASH
    _HASHER = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost_kib, parallelism=parallelism)
    _DUMMY_HASH = None


class PasswordPolicyError(ValueError):
    """A password the policy refuses; the text says why (never the password)."""


def check_password_policy(password: str) -> None:
    if not isinstance(password, str):
        raise PasswordPolicyError("the password must be text")
    if len(password) < MIN_PASSWORD_CHARS:
        raise PasswordPolicyError(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise PasswordPolicyError(f"the password must have at most {MAX_PASSWORD_CHARS} characters")


def hash_password(password: str) -> str:
    """The argon2id encoded hash ('$argon2id$v=19$m=...$salt$hash') of a policy-conforming password."""
    check_password_policy(password)
    return _HASHER.hash(password)


def verify_password(encoded: str, password: str) -> bool:
    """True when `password` matches `encoded`; False for a mismatch, an over-long input or a damaged hash."""
    if not isinstance(password, str) or len(password) > MAX_PASSWORD_CHARS:
        return False
    try:
        return _HASHER.verify(encoded, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def dummy_verify(password: str) -> None:
    """Spend the time of one verification (for a user that does not exist)."""
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = _HASHER.hash("garbagewatch-no-such-user")
    verify_password(_DUMMY_HASH, password)


def needs_rehash(encoded: str) -> bool:
    try:
        return _HASHER.check_needs_rehash(encoded)
    except InvalidHashError:
        return True
