"""Text normalisation for matching, and cleaning for display (issue 15, "A text safety
pipeline").

Two copies of a viewer's text, for two jobs:

- :func:`normalise` gives the copy that blocklists and name rules MATCH against. It
  undoes the usual dodges: full-width and other compatibility forms (NFKC/NFKD), case,
  zero-width and control characters, bidi overrides, combining marks (accents and
  zalgo stacks), Cyrillic and Greek look-alikes, traditional characters (mapped to
  simplified with OpenCC's character table), letters spaced or dotted apart
  (``f u c k``, ``傻 逼``) and repeated characters. Nobody ever sees it.
- :func:`clean_for_display` gives what viewers see: what the sender typed, less bidi
  overrides and zalgo stacks, and with masked words replaced by ＊.

:class:`Normalised` keeps, for each character of the matching copy, the index of the
character of the original it came from, so a match can be masked in the original.
Pure code: tested with plain strings (tests/test_text_filter.py).
"""

from __future__ import annotations

import functools
import importlib.util
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

MASK = "＊"
MAX_MARKS = 2  # combining marks kept on one base character for display (zalgo cap)

# Bidi embeddings, overrides and isolates (Unicode 15, UAX #9 section 2): they reorder
# what follows them on screen, so a viewer sees something else than what was sent.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_NO_BIDI = dict.fromkeys(map(ord, BIDI_CONTROLS))

# Letters from other scripts that look like Latin ones (Unicode TR39 confusables, the
# common Cyrillic and Greek ones), applied after case folding.
HOMOGLYPHS = {
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o",
    "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i",
    "ј": "j", "ԁ": "d", "ԛ": "q", "ԝ": "w", "һ": "h", "ӏ": "l", "ɑ": "a", "ɡ": "g",
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o",
    "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "γ": "y", "ω": "w", "ϲ": "c", "ı": "i",
}  # fmt: skip


@functools.cache
def _simplified() -> dict[str, str]:
    """Traditional -> simplified, one character to one: OpenCC's character table
    (TSCharacters.txt, Apache-2.0, as opencc-python-reimplemented ships it; the first
    candidate where it gives several).

    Whole-phrase conversion (OpenCC's converter, zhconv) costs 6-50 µs per danmaku; for
    matching a blocklist, character by character is what matters, and a table lookup per
    character costs far less (BENCHMARKS.md, "Text filter"). zhconv's table is GPL.
    Read once, at the first use (the filter's start)."""
    spec = importlib.util.find_spec("opencc")
    if spec is None or spec.origin is None:  # pragma: no cover - a declared dependency
        raise RuntimeError("opencc-python-reimplemented is not installed")
    data = Path(spec.origin).with_name("dictionary") / "TSCharacters.txt"
    table: dict[str, str] = {}
    for line in data.read_text(encoding="utf-8").splitlines():
        trad, _, simple = line.partition("\t")
        candidates = simple.split()
        if len(trad) == 1 and candidates and len(candidates[0]) == 1:
            table[trad] = candidates[0]
    return table


def is_cjk(ch: str) -> bool:
    """A Han, kana or Hangul character: words in these scripts are not spaced apart."""
    o = ord(ch)
    return (
        0x3040 <= o <= 0x30FF
        or 0x3400 <= o <= 0x4DBF
        or 0x4E00 <= o <= 0x9FFF
        or 0xAC00 <= o <= 0xD7AF
        or 0xF900 <= o <= 0xFAFF
        or 0x20000 <= o <= 0x3134F
    )


@functools.lru_cache(maxsize=65536)
def fold_char(ch: str) -> str:
    """What one original character becomes in the matching copy: "" (dropped), " " (a
    separator) or one or more letters, digits or CJK characters."""
    if ch in BIDI_CONTROLS:
        return ""
    out = []
    for part in unicodedata.normalize("NFKD", ch).casefold():
        cat = unicodedata.category(part)
        if cat in ("Mn", "Me", "Cf", "Cc", "Cs", "Co", "Cn"):
            continue  # marks, zero-width and control characters, unassigned
        if cat[0] in "LN":
            part = HOMOGLYPHS.get(part, part)
            out.append(_simplified().get(part, part))
        else:
            out.append(" ")  # spaces, punctuation, symbols and emoji part words
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Normalised:
    """The matching copy of a text (``text``: words single-spaced, repeats collapsed to
    one character; ``twice``: repeats collapsed to two, for entries with a double letter
    such as "ass"), and, per character of each, the first and last index in the
    original of what it stands for (a run: "uuu" -> "u")."""

    text: str
    first: tuple[int, ...]
    last: tuple[int, ...]
    twice: str
    twice_first: tuple[int, ...]
    twice_last: tuple[int, ...]


def _join_pieces(original: str) -> tuple[list[str], list[int]]:
    """Fold each character, then close up what dodges put apart: single letters spaced or
    dotted apart (``f.u.c.k``), and any separator between two CJK characters."""
    chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(original):
        for part in fold_char(ch):
            if part == " ":
                if chars and chars[-1] != " ":
                    chars.append(" ")
                    origin.append(i)
            else:
                chars.append(part)
                origin.append(i)
    if chars and chars[-1] == " ":
        chars.pop()
        origin.pop()
    # Drop a space whose neighbours are both CJK, or both one-letter words.
    keep_c: list[str] = []
    keep_o: list[int] = []
    n = len(chars)
    for k, c in enumerate(chars):
        if c == " " and 0 < k < n - 1:
            left, right = chars[k - 1], chars[k + 1]
            if is_cjk(left) and is_cjk(right):
                continue
            single_left = k < 2 or chars[k - 2] == " "
            single_right = k + 2 >= n or chars[k + 2] == " "
            if single_left and single_right and not is_cjk(left) and not is_cjk(right):
                continue
        if c != " " and keep_c and keep_c[-1] != " " and is_cjk(c) != is_cjk(keep_c[-1]):
            keep_c.append(" ")  # "你是fuck吗": a word boundary between scripts
            keep_o.append(origin[k])
        keep_c.append(c)
        keep_o.append(origin[k])
    return keep_c, keep_o


def _collapse(
    chars: list[str], origin: list[int], most: int
) -> tuple[str, tuple[int, ...], tuple[int, ...]]:
    """Runs of one character cut to ``most``; the last kept one of a run stands for the
    rest of it too (so a match masks the whole run). A doubled CJK character is a word
    of its own (妈妈, 哈哈, 看看): only runs of three or more are cut."""
    out: list[str] = []
    first: list[int] = []
    last: list[int] = []
    k, n = 0, len(chars)
    while k < n:
        end = k
        while end + 1 < n and chars[end + 1] == chars[k]:
            end += 1
        run = end - k + 1
        keep = run if run == 2 and is_cjk(chars[k]) else min(run, most)
        for j in range(keep):
            out.append(chars[k + j])
            first.append(origin[k + j])
            last.append(origin[k + j])
        last[-1] = origin[end]
        k = end + 1
    return "".join(out), tuple(first), tuple(last)


def normalise_with_origin(text: str) -> Normalised:
    """The matching copy of ``text`` with where each of its characters came from."""
    chars, origin = _join_pieces(text)
    return Normalised(*_collapse(chars, origin, 1), *_collapse(chars, origin, 2))


# --- the fast copy: the same matching copy without origins, in a few C-level passes ----
#
# Most texts hold nothing to mask: they are decided on this copy (a translate and up to five
# regex passes, a few µs for a danmaku); only a text with a word to mask is folded again,
# character by character, by normalise_with_origin to know where the word was. Both give
# the same copy (tests/test_text_filter.py checks them against each other).

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f"
_SPACES = re.compile(" {2,}")
_CJK_GAP = re.compile(f"(?<=[{_CJK}]) (?=[{_CJK}])")
_SINGLES = re.compile(f"(?<![^ ])[^ {_CJK}](?: [^ {_CJK}](?![^ ]))+")
_SCRIPTS = re.compile(f"(?<=[{_CJK}])(?=[^ {_CJK}])|(?<=[^ {_CJK}])(?=[{_CJK}])")
# A repeat: two or more of one character, three or more of a CJK one (哈哈 is a word).
_REPEATS = re.compile(f"([^{_CJK}])\\1+|([{_CJK}])\\2{{2,}}")
# The same for a text of ASCII only, which holds no CJK character: without the CJK
# classes the engine tests one character, not a list of ranges, at each position.
_ASCII_SINGLES = re.compile("(?<![^ ])[^ ](?: [^ ](?![^ ]))+")
_ASCII_REPEATS = re.compile("(.)\\1+", re.DOTALL)
_ENCLOSING = re.compile("[\u0488\u0489\u1abe\u20dd-\u20e0\u20e2-\u20e4\ua670-\ua672]")
MAX_FOLDED = 65536  # characters whose folding is kept (past it: folded each time)


class _Folding(dict[int, str]):
    """``str.translate``'s table: each character's :func:`fold_char`, found on first use."""

    def __missing__(self, code: int) -> str:
        folded = fold_char(chr(code))
        if len(self) < MAX_FOLDED:
            self[code] = folded
        return folded


_FOLDING = _Folding()


def fast_copies(text: str) -> tuple[str, str]:
    """The matching copy (repeats cut to one) and the one with repeats cut to two, as
    :func:`normalise_with_origin` gives them, without where each character came from."""
    s = text.translate(_FOLDING)
    ascii_only = s.isascii()
    if " " in s:  # (each pass only where it can change something: most danmaku are short)
        s = _SPACES.sub(" ", s).strip(" ")
        if ascii_only:
            s = _ASCII_SINGLES.sub(_joined, s)
        else:
            s = _SINGLES.sub(_joined, _CJK_GAP.sub("", s))
    if not ascii_only:
        s = _SCRIPTS.sub(" ", s)
    return _cut_repeats(s, _ASCII_REPEATS if ascii_only else _REPEATS)


def _joined(spaced: re.Match[str]) -> str:
    return spaced.group(0).replace(" ", "")


def _cut_repeats(s: str, repeats: re.Pattern[str]) -> tuple[str, str]:
    """``s`` with each repeat cut to one character, and cut to two: one pass, where two
    ``re.sub`` with a template each cost a Python call per repeat (Python 3.11)."""
    once: list[str] = []
    twice: list[str] = []
    last = 0
    for repeat in repeats.finditer(s):
        start = repeat.start()
        kept, ch = s[last:start], s[start]
        once += (kept, ch)
        twice += (kept, ch + ch)
        last = repeat.end()
    if not last:
        return s, s
    once.append(s[last:])
    twice.append(s[last:])
    return "".join(once), "".join(twice)


def normalise(text: str) -> str:
    """The copy of ``text`` to match blocklists and reserved names against (never shown):
    ``normalise("Ｆ u\u200bc k") == normalise("fuuuck") == "fuck"``."""
    return fast_copies(text)[0]


def cap_marks(text: str, most: int = MAX_MARKS) -> str:
    """At most ``most`` combining marks on one character (a zalgo stack is cut)."""
    out: list[str] = []
    marks = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) == "Me":
            marks += 1
            if marks > most:
                continue
        else:
            marks = 0
        out.append(ch)
    return "".join(out)


def clean_for_display(text: str, masked: list[tuple[int, int]] | None = None) -> str:
    """What viewers see: the sender's text less bidi overrides, with zalgo stacks capped
    and each character in the ``masked`` spans (inclusive indexes into ``text``) shown
    as ＊ (spaces and zero-width characters in a span are dropped)."""
    if masked:
        hidden = [False] * len(text)
        for first, last in masked:
            for k in range(first, last + 1):
                hidden[k] = True
        parts = []
        for k, ch in enumerate(text):
            if not hidden[k]:
                parts.append(ch)
            elif fold_char(ch).strip():
                parts.append(MASK)
        text = "".join(parts)
    if text.isascii():
        return text  # neither bidi controls nor combining marks
    text = text.translate(_NO_BIDI)
    if any(map(unicodedata.combining, text)) or _ENCLOSING.search(text):
        text = cap_marks(text)
    return text
