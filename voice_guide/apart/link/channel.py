"""Seal and open the messages of one paired connection: ChaCha20-Poly1305 with a counter per direction.

A frame on the wire is `counter (8 bytes, big-endian) || ciphertext+tag`. Each direction has
its own key (`pairing.ConnectionKeys`), so a counter is a nonce that never repeats under one
key; the receiver accepts exactly the next counter, so a replayed, reordered, dropped-in or
altered frame is refused and the stream carries on with the next genuine one. Plaintexts
are padded with spaces (JSON ignores them) to a multiple of PAD_BYTES, so a frame's length
says little more than "short message" or "the script".
"""

from __future__ import annotations

from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

COUNTER_BYTES: Final = 8
TAG_BYTES: Final = 16
PAD_BYTES: Final = 128
_LAST_COUNTER: Final = 2**63  # far beyond any session; the connection ends before a wrap


class SealError(ValueError):
    """A frame that does not open: not ours, altered, replayed or out of order."""


def _pad(plain: bytes) -> bytes:
    return plain + b" " * (-len(plain) % PAD_BYTES)


class Sealer:
    """Seal one direction's messages in order."""

    def __init__(self, key: bytes) -> None:
        self._aead = ChaCha20Poly1305(key)
        self._next = 0

    def seal(self, plain: bytes) -> bytes:
        """Return the frame for `plain`; each call uses the next counter."""
        if self._next >= _LAST_COUNTER:
            raise SealError("this connection has sent all the messages it may")
        counter = self._next.to_bytes(COUNTER_BYTES, "big")
        self._next += 1
        return counter + self._aead.encrypt(b"\0" * 4 + counter, _pad(plain), counter)


class Opener:
    """Open one direction's frames, accepting only the next counter."""

    def __init__(self, key: bytes) -> None:
        self._aead = ChaCha20Poly1305(key)
        self._next = 0

    @property
    def opened(self) -> int:
        """Return how many frames opened so far."""
        return self._next

    def open(self, frame: bytes) -> bytes:
        """Return the padded plaintext of `frame`, or raise SealError (the next frame may still open)."""
        if len(frame) < COUNTER_BYTES + TAG_BYTES:
            raise SealError("too short to be sealed")
        counter = frame[:COUNTER_BYTES]
        number = int.from_bytes(counter, "big")
        if number != self._next:
            raise SealError("replayed" if number < self._next else "out of order")
        try:
            plain = self._aead.decrypt(b"\0" * 4 + counter, frame[COUNTER_BYTES:], counter)
        except InvalidTag:
            raise SealError("does not authenticate") from None
        self._next += 1
        return plain
