"""Link two devices for an apart session: SPAKE2 pairing on a spoken code, a sealed channel, clock sync, timed steps.

One device hosts (`Host`), the other joins (`join`). The state machines live one per file:
`pairing` (code, SPAKE2, proofs, key schedule), `channel` (sealed frames with counters),
`protocol` (the messages inside), `clock` (the joiner's offset to the host), `peer` (what
both ends share), `host` (admission and the partner's connection), `joiner` (pair, resume).
See the README's "Security" section for what this protects and what it does not.
"""

from voice_guide.apart.link.clock import HostClock, estimate_clock
from voice_guide.apart.link.host import MAX_UNPAIRED, MAX_WRONG_TRIES, Host
from voice_guide.apart.link.joiner import Joiner, join, link_url
from voice_guide.apart.link.pairing import CODE_SPACE, make_code, normalize_code
from voice_guide.apart.link.protocol import (
    DEFAULT_PORT,
    MAX_MESSAGE_BYTES,
    MIN_LEAD_S,
    PROTOCOL_VERSION,
    BadMessage,
    Control,
    EndedBy,
    Inbox,
    LinkBusy,
    LinkError,
    LinkLost,
    LinkRefused,
    LinkTimings,
    Message,
    Speech,
    StepStart,
    decode_message,
    encode_message,
)

__all__ = [
    "CODE_SPACE",
    "DEFAULT_PORT",
    "MAX_MESSAGE_BYTES",
    "MAX_UNPAIRED",
    "MAX_WRONG_TRIES",
    "MIN_LEAD_S",
    "PROTOCOL_VERSION",
    "BadMessage",
    "Control",
    "EndedBy",
    "Host",
    "HostClock",
    "Inbox",
    "Joiner",
    "LinkBusy",
    "LinkError",
    "LinkLost",
    "LinkRefused",
    "LinkTimings",
    "Message",
    "Speech",
    "StepStart",
    "decode_message",
    "encode_message",
    "estimate_clock",
    "join",
    "link_url",
    "make_code",
    "normalize_code",
]
