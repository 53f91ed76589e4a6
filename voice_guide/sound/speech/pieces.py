"""Cut a long prompt into pieces a speech engine takes safely, at sentence ends where it can.

Engines have limits of their own (espeak-ng crashes the process on one call of about
50,000 characters); every engine gets its text through here, so none ever sees more
than MAX_PIECE_CHARS at once.
"""

from __future__ import annotations

import re

# A long sentence, well under any engine's limit, and short enough that a piece cut
# mid-sentence still ends at a phrase.
MAX_PIECE_CHARS = 400
# Where a piece may end, best first: after a sentence, after a clause, after a word.
_BREAKS = (re.compile(r"(?<=[.!?;:])\s+"), re.compile(r"(?<=[,)\]])\s+"), re.compile(r"\s+"))


def speakable_pieces(text: str, max_chars: int = MAX_PIECE_CHARS) -> list[str]:
    """Split `text` into pieces of at most `max_chars` characters, preferring sentence, then clause, then word ends."""
    text = text.strip()
    if len(text) <= max_chars:
        return [text] if text else []
    return _split(text, max_chars, 0)


def _split(text: str, max_chars: int, level: int) -> list[str]:
    if len(text) <= max_chars:
        return [text]
    if level == len(_BREAKS):
        # One "word" longer than a piece (no spaces at all): cut it blindly.
        return [text[i : i + max_chars] for i in range(0, len(text), max_chars)]
    pieces: list[str] = []
    current = ""
    for part in _BREAKS[level].split(text):
        if not part:
            continue
        joined = f"{current} {part}" if current else part
        if len(joined) <= max_chars:
            current = joined
            continue
        if current:
            pieces.append(current)
        if len(part) > max_chars:
            pieces += _split(part, max_chars, level + 1)
            current = ""
        else:
            current = part
    if current:
        pieces.append(current)
    return pieces
