"""Pairing: the spoken code, the SPAKE2 exchange over it, key confirmation, resume proofs, and the key schedule.

Before a connection is paired it carries only these short binary frames (tag byte first);
everything after is sealed (`channel`):

    pair       joiner -> host   0x01 version spake2_B(33)
    pake       host -> joiner   0x02 spake2_A(33)
    resume     joiner -> host   0x05 version session_id(16) joiner_nonce(16)
    challenge  host -> joiner   0x06 host_nonce(16)
    proof      joiner -> host   0x03 joiner_proof(32)
    confirm    host -> joiner   0x04 host_proof(32)          then sealed frames both ways
    refused    host -> joiner   0x08 reason(1) retry_after_ds(2)

SPAKE2 (the `spake2` package) turns the code into a shared key without the code or anything
checkable against it crossing the wire: a recorded exchange, or a fake host the joiner is
pointed at, learns nothing that tests a guess offline; each active try tests one guess.
The joiner proves the derived key first, then the host; a wrong proof is a wrong code.
The exchange's key gives a session secret that both sides keep in memory; each connection
(the first, and each resume after a drop) derives fresh keys and proofs from it, so a
partner comes back by proving the secret, never by using the code again.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from spake2 import SPAKE2_A, SPAKE2_B, SPAKEError

from voice_guide.apart.link.protocol import PROTOCOL_VERSION
from voice_guide.apart.link.words import WORDS
from voice_guide.errors import UsageError

PAIR: Final = 0x01
PROOF: Final = 0x03
CONFIRM: Final = 0x04
PAKE: Final = 0x02
RESUME: Final = 0x05
CHALLENGE: Final = 0x06
REFUSED: Final = 0x08

WRONG_CODE: Final = 1  # the joiner's proof did not match: a wrong code
TAKEN: Final = 2  # a partner has already paired with this code
BUSY: Final = 3  # try again after retry_after_s
UNKNOWN: Final = 4  # no such session to resume, or its proof did not match
VERSION: Final = 5  # the other device speaks another protocol version
REASONS: Final = frozenset({WRONG_CODE, TAKEN, BUSY, UNKNOWN, VERSION})

PAKE_BYTES: Final = 33
PROOF_BYTES: Final = 32
SESSION_ID_BYTES: Final = 16
NONCE_BYTES: Final = 16
CODE_NUMBERS: Final = 999  # codes start with 1..999
CODE_SPACE: Final = CODE_NUMBERS * len(WORDS) ** 2
_LENGTHS: Final = {
    PAIR: 1 + PAKE_BYTES,
    PAKE: PAKE_BYTES,
    PROOF: PROOF_BYTES,
    CONFIRM: PROOF_BYTES,
    RESUME: 1 + SESSION_ID_BYTES + NONCE_BYTES,
    CHALLENGE: NONCE_BYTES,
    REFUSED: 3,
}
_HOST_ID: Final = b"voice-guide link host"
_JOINER_ID: Final = b"voice-guide link joiner"
_LABEL: Final = b"voice-guide link v2 "
_PAIRING_SALT: Final = b"first connection"  # resumes salt with 32 bytes of nonces instead


class PairingError(ValueError):
    """A pairing frame that is not one, or a SPAKE2 message that is not a group element."""


def make_code() -> str:
    """Return a fresh one-use pairing code like 417-maple-otter (about 26 bits), easy to read out on a call."""
    number = 1 + secrets.randbelow(CODE_NUMBERS)
    return f"{number}-{secrets.choice(WORDS)}-{secrets.choice(WORDS)}"


def normalize_code(code: str) -> str:
    """Return the code as compared: lower case, words joined by single dashes, numbers without leading zeros."""
    words = code.lower().replace("-", " ").replace("_", " ").split()
    if not words:
        raise UsageError("the pairing code is empty", hint="type the code shown on the host's device")
    return "-".join(str(int(word)) if word.isdigit() else word for word in words)


def frame(tag: int, *parts: bytes) -> bytes:
    """Return one pre-pairing frame."""
    body = bytes([tag]) + b"".join(parts)
    assert len(body) == 1 + _LENGTHS[tag], (tag, len(body))
    return body


def version_byte() -> bytes:
    """Return the version byte that pair and resume frames carry."""
    return bytes([PROTOCOL_VERSION])


def refusal(reason: int, retry_after_s: float = 0.0) -> bytes:
    """Return a refused frame; `retry_after_s` is rounded up to tenths (BUSY only)."""
    tenths = min(0xFFFF, max(0, -int(-retry_after_s * 10 // 1)))
    return frame(REFUSED, bytes([reason]), tenths.to_bytes(2, "big"))


def parse(data: bytes | str, expected: frozenset[int]) -> tuple[int, bytes]:
    """Return (tag, body) of a pre-pairing frame of one of `expected` tags; raise PairingError otherwise."""
    if isinstance(data, str) or not data:
        raise PairingError("not a pairing frame")
    tag, body = data[0], data[1:]
    if tag not in expected or len(body) != _LENGTHS[tag]:
        raise PairingError("not a pairing frame")
    if tag == REFUSED and body[0] not in REASONS:
        raise PairingError("not a pairing frame")
    return tag, body


def _derive(secret: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=SHA256(), length=length, salt=salt, info=_LABEL + info).derive(secret)


class Pake:
    """One side of the SPAKE2 exchange over a pairing code."""

    def __init__(self, code: str, *, host: bool) -> None:
        password = _LABEL + normalize_code(code).encode("utf-8")
        side = SPAKE2_A if host else SPAKE2_B
        self._spake = side(password, idA=_HOST_ID, idB=_JOINER_ID)
        self._outbound = b""

    def start(self) -> bytes:
        """Return this side's message (33 bytes: a side byte and a curve point blinded by the code)."""
        self._outbound = bytes(self._spake.start())
        return self._outbound

    def finish(self, inbound: bytes) -> bytes:
        """Return the 32-byte key from the other side's message; raise PairingError if it is not one."""
        try:
            return bytes(self._spake.finish(inbound))
        except (SPAKEError, ValueError) as exc:
            raise PairingError("not a SPAKE2 message") from exc


@dataclass(frozen=True)
class Session:
    """What both sides keep after pairing: a public id for resumes and the secret that proves them."""

    session_id: bytes
    secret: bytes

    def __repr__(self) -> str:  # never print the secret
        return f"Session(id={self.session_id.hex()[:8]}…)"

    @classmethod
    def from_pake_key(cls, key: bytes) -> Session:
        """Derive the session from the SPAKE2 key."""
        return cls(_derive(key, b"", b"session id", SESSION_ID_BYTES), _derive(key, b"", b"session secret", 32))

    def first_connection(self) -> ConnectionKeys:
        """Return the keys of the connection that paired."""
        return ConnectionKeys.derive(self.secret, _PAIRING_SALT)

    def resumed_connection(self, joiner_nonce: bytes, host_nonce: bytes) -> ConnectionKeys:
        """Return the keys of a resumed connection, fresh for its pair of nonces."""
        return ConnectionKeys.derive(self.secret, joiner_nonce + host_nonce)


@dataclass(frozen=True, repr=False)
class ConnectionKeys:
    """One connection's proofs (joiner's, host's) and message keys (one per direction)."""

    joiner_proof: bytes
    host_proof: bytes
    host_to_joiner: bytes
    joiner_to_host: bytes

    @classmethod
    def derive(cls, secret: bytes, salt: bytes) -> ConnectionKeys:
        """Derive the four 32-byte values from the session secret and this connection's salt."""
        okm = _derive(secret, salt, b"connection", 4 * 32)
        return cls(okm[:32], okm[32:64], okm[64:96], okm[96:])


def new_nonce() -> bytes:
    """Return a fresh random nonce for a resume."""
    return secrets.token_bytes(NONCE_BYTES)
