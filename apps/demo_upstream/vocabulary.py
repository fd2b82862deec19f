"""The demo upstream's fixed vocabulary and its deterministic word sequences.

Every word here is a single token in tiktoken's cl100k encoding both on its own and with a
leading space, so an answer of N words is exactly N tokens for a real tokenizer too
(``tests/demo_upstream`` checks this). Answers are slices of one fixed pseudo-random word
sequence, so a request only picks an offset: the strings are all built at import time.
"""

from __future__ import annotations

import orjson

_WORD_LIST = """
    the of and to in is it that for was on are as with his they at be this from have or by
    one had not but what all were when we there can an your which their said if do will each
    about how up out them then she many some so these would other into has more her two like
    him see time could no make than first been its who now people my made over did down only
    way find use may water long little very after words called just where most know get
    through back much before go good new write our used me man too any day same right look
    think also around another came come work three word must because does part even place
    well such here take why things help put years different away again off went old number
    great tell men say small every found still between name should home big give air line
    set own under read last never us left end along while might next sound below something
    thought both few those always show large often house world going want school important
    until form food keep children land side without boy once animals life took sometimes
    four head above kind almost live page got earth need far hand high year mother light
    parts country father let night following picture being study second eyes soon times
    story boys since white days ever paper hard near sentence better best during today
    others sure means try young sun ways thing whole hear example heard change answer room
    sea against top turned learn point city play five using usually river bright quiet green
    stone cloud window simple open early clear warm field road music table voice market
    winter summer bridge forest letter silver golden
"""
WORDS: tuple[str, ...] = tuple(_WORD_LIST.split())

SEQUENCE_LENGTH = 4099  # prime, so offsets derived from a hash spread evenly


def _build_sequence(length: int) -> tuple[str, ...]:
    """Return ``length`` words chosen by a fixed linear congruential generator."""
    state = 0x2545F491
    words: list[str] = []
    for _ in range(length):
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        words.append(WORDS[(state >> 33) % len(WORDS)])
    return tuple(words)


_BARE: tuple[str, ...] = _build_sequence(SEQUENCE_LENGTH)
_SPACED: tuple[str, ...] = tuple(" " + word for word in _BARE)

# JSON encodings of every piece an answer can contain, for the streaming fast path.
PIECE_JSON: dict[str, bytes] = {
    piece: orjson.dumps(piece) for piece in (*WORDS, *(" " + word for word in WORDS))
}


def word_pieces(offset: int, count: int, *, first_is_bare: bool = True) -> list[str]:
    """Return ``count`` word tokens of the fixed sequence starting at ``offset``.

    The first piece has no leading space when ``first_is_bare`` (the start of an answer);
    every other piece is ``" " + word``. The sequence wraps around, so any count works.
    """
    if count <= 0:
        return []
    start = offset % SEQUENCE_LENGTH
    pieces: list[str] = []
    if first_is_bare:
        pieces.append(_BARE[start])
        start += 1
    while len(pieces) < count:
        start %= SEQUENCE_LENGTH
        end = min(SEQUENCE_LENGTH, start + count - len(pieces))
        pieces.extend(_SPACED[start:end])
        start = end
    return pieces


def piece_json(piece: str) -> bytes:
    """Return ``piece`` as a JSON string, precomputed for vocabulary words."""
    encoded = PIECE_JSON.get(piece)
    return encoded if encoded is not None else orjson.dumps(piece)
