"""ES256 signing and public keys with AWS KMS (ECC_NIST_P256, SIGN_VERIFY): the private key never leaves KMS."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from otp_core.errors import DependencyError
from otp_core.observability import tracer
from otp_core.ports import PublicKeySource, Signer

_P256_COORDINATE = 32


def der_to_raw_signature(der: bytes) -> bytes:
    """Convert a DER ECDSA-Sig-Value (what KMS returns) to the JOSE form r || s, 32 bytes each."""

    def read_int(buf: bytes, pos: int) -> tuple[int, int]:
        if buf[pos] != 0x02:
            raise ValueError("expected an INTEGER")
        length = buf[pos + 1]
        start = pos + 2
        return int.from_bytes(buf[start : start + length], "big"), start + length

    if len(der) < 8 or der[0] != 0x30:
        raise ValueError("expected a DER SEQUENCE")
    # P-256 signatures are at most 72 bytes, so the sequence length always fits the short form.
    pos = 2
    r, pos = read_int(der, pos)
    s, pos = read_int(der, pos)
    if pos != len(der) or der[1] != len(der) - 2:
        raise ValueError("trailing or missing bytes in signature")
    return r.to_bytes(_P256_COORDINATE, "big") + s.to_bytes(_P256_COORDINATE, "big")


class KmsSigner(Signer):
    """Signs with ``kms:Sign`` (ECDSA_SHA_256 over the raw message; KMS hashes it).

    Parameters
    ----------
    client:
        A boto3 KMS client.
    key_id:
        The key ID, also published as the JWT ``kid``.
    """

    def __init__(self, client: Any, key_id: str) -> None:
        self._client = client
        self.key_id = key_id

    @tracer.capture_method(capture_response=False)
    def sign(self, message: bytes) -> bytes:
        try:
            response = self._client.sign(
                KeyId=self.key_id, Message=message, MessageType="RAW", SigningAlgorithm="ECDSA_SHA_256"
            )
        except (ClientError, BotoCoreError) as exc:
            raise DependencyError("token signing is unavailable; retry later") from exc
        return der_to_raw_signature(response["Signature"])


class KmsPublicKeys(PublicKeySource):
    def __init__(self, client: Any) -> None:
        self._client = client

    @tracer.capture_method(capture_response=False)
    def public_key_der(self, key_id: str) -> bytes:
        try:
            response = self._client.get_public_key(KeyId=key_id)
        except (ClientError, BotoCoreError) as exc:
            raise DependencyError("signing keys are unavailable; retry later") from exc
        return bytes(response["PublicKey"])
