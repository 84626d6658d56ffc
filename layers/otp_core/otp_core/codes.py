"""One-time codes: generation, keyed hashing and the masked copy that lets resend send the same code.

The table never holds a code in clear. It holds two values derived with a server-side key that lives in
Secrets Manager:

- ``code_hash`` = HMAC-SHA256(key, "hash" | challenge id | code): what a submitted code is compared with;
- ``code_mask`` = (code + pad) mod 10^n with pad = HMAC-SHA256(key, "pad" | challenge id) mod 10^n: a one-time
  pad over the digit space, so resend can recover and send the same code while a copy of the table alone
  reveals nothing about it.

The HMAC key also derives the opaque keys of the per-number and per-IP counters, so they carry no numbers.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


class CodeBook:
    """Keyed operations on codes and identifiers.

    Parameters
    ----------
    key:
        The secret HMAC key (at least 32 bytes of entropy).
    """

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the code key must be at least 32 bytes")
        self._key = key

    @staticmethod
    def new_code(length: int) -> str:
        """Draw a uniformly random code of ``length`` digits (4-10) from the OS CSPRNG."""
        if not 4 <= length <= 10:
            raise ValueError("code length must be 4-10 digits")
        return f"{secrets.randbelow(10**length):0{length}d}"

    def _mac(self, *parts: str) -> bytes:
        return hmac.new(self._key, "\x00".join(parts).encode(), hashlib.sha256).digest()

    def code_hash(self, challenge_id: str, code: str) -> str:
        """Keyed hash of a code, bound to its challenge so a hash cannot be replayed elsewhere."""
        return self._mac("hash", challenge_id, code).hex()

    def _pad(self, challenge_id: str, length: int) -> int:
        pad: int = int.from_bytes(self._mac("pad", challenge_id), "big") % 10**length
        return pad

    def mask(self, challenge_id: str, code: str) -> str:
        """Encrypt a code for storage (one-time pad keyed by the challenge); keeps the code's length."""
        length = len(code)
        return f"{(int(code) + self._pad(challenge_id, length)) % 10**length:0{length}d}"

    def unmask(self, challenge_id: str, masked: str) -> str:
        """Recover the code stored by :meth:`mask`, of the length it was stored with (a later change of the
        policy's code length must not break resends of pending challenges)."""
        length = len(masked)
        return f"{(int(masked) - self._pad(challenge_id, length)) % 10**length:0{length}d}"

    def matches(self, challenge_id: str, code: str, stored_hash: str) -> bool:
        """Compare a submitted code with a stored hash in constant time."""
        return hmac.compare_digest(self.code_hash(challenge_id, code), stored_hash)

    def subject_key(self, kind: str, value: str) -> str:
        """Opaque, keyed identifier of a phone number or IP address for counter items."""
        return self._mac("subject", kind, value)[:16].hex()
