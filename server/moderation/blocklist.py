"""The blocklist: words and what to do when a text holds one (config/blocklist.txt has
the format), matched with Aho–Corasick over the text's normalised copy.

An entry matches in the matching copy of :mod:`.text`. A CJK entry matches anywhere;
a Latin one only as a whole word (``fuck``), or as the start of a word when it ends
with ``*`` (``fuck*`` also catches "fucking"), so "class" and "Scunthorpe" stay clean.
Entries whose letters repeat ("ass") match the copy with runs cut to two, the others
the copy with runs cut to one ("fuuuuck" -> "fuck"). pyahocorasick was measured
against ahocorasick-rs (BENCHMARKS.md, "Text filter") and is the faster here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import ahocorasick  # type: ignore[import-not-found,unused-ignore]

from server.moderation.text import Normalised, is_cjk, normalise_with_origin

ACTIONS = ("reject", "review", "mask")  # strongest first
MAX_ENTRY_CHARS = 64


class BlocklistError(ValueError):
    """A blocklist line that cannot be read, with its line number."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One blocked word and its action: ``reject``, ``review`` (hold) or ``mask`` (＊)."""

    word: str
    action: str


@dataclass(frozen=True, slots=True)
class Hit:
    """A match: the entry's action, and the span of the original text it covers."""

    action: str
    first: int
    last: int


def parse_line(line: str, number: int = 0) -> Entry | None:
    """``action<TAB or spaces>word``; blank lines and ``#`` comments give None."""
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    action, _, word = line.partition(" ") if "\t" not in line else line.partition("\t")
    word = word.strip()
    if action not in ACTIONS or not word:
        raise BlocklistError(
            f"line {number}: expected 'reject|review|mask <word>', got {line[:80]!r}"
        )
    return check_entry(word, action, number)


def check_entry(word: str, action: str, number: int = 0) -> Entry:
    where = f"line {number}: " if number else ""
    if action not in ACTIONS:
        raise BlocklistError(f"{where}action must be one of {', '.join(ACTIONS)}")
    prefix = word.endswith("*")
    # Repeats cut to two, as in the copy that entries with a double letter match.
    folded = normalise_with_origin(word.rstrip("*")).twice
    if not folded or len(word) > MAX_ENTRY_CHARS:
        raise BlocklistError(f"{where}a word must have 1..{MAX_ENTRY_CHARS} letters")
    return Entry(folded + ("*" if prefix else ""), action)


def read_file(path: Path) -> list[Entry]:
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        entry = parse_line(line, number)
        if entry is not None:
            entries.append(entry)
    return entries


_DOUBLE = re.compile(r"(.)\1")


def _pattern(word: str) -> str:
    """The entry as found in the space-padded matching copy."""
    prefix = word.endswith("*")
    word = word.rstrip("*")
    if is_cjk(word[0]) and is_cjk(word[-1]):
        return word
    return f" {word}" if prefix else f" {word} "


class Blocklist:
    """A compiled set of entries; ``find`` lists the hits in one normalised text."""

    def __init__(self, entries: Iterable[Entry]) -> None:
        self.entries = list(entries)
        self._once = ahocorasick.Automaton()
        self._twice = ahocorasick.Automaton()
        for e in self.entries:
            word = e.word.rstrip("*")
            automaton = self._twice if _DOUBLE.search(word) else self._once
            pattern = _pattern(e.word)
            held = automaton.get(pattern, None)
            if held is None or ACTIONS.index(e.action) < ACTIONS.index(held[0]):
                automaton.add_word(pattern, (e.action, len(pattern)))
        for automaton in (self._once, self._twice):
            if len(automaton):
                automaton.make_automaton()

    def __len__(self) -> int:
        return len(self.entries)

    def strongest(self, once: str, twice: str) -> str | None:
        """The strongest action of the entries in the two matching copies, or None."""
        found: str | None = None
        for automaton, text in ((self._once, once), (self._twice, twice)):
            if not len(automaton) or not text:
                continue
            for _, (action, _) in automaton.iter(f" {text} "):
                if found is None or ACTIONS.index(action) < ACTIONS.index(found):
                    found = action
                    if action == ACTIONS[0]:
                        return found
        return found

    def find(self, n: Normalised) -> list[Hit]:
        hits: list[Hit] = []
        for automaton, text, starts, ends in (
            (self._once, n.text, n.first, n.last),
            (self._twice, n.twice, n.twice_first, n.twice_last),
        ):
            if not len(automaton) or not text:
                continue
            padded = f" {text} "
            for end, (action, length) in automaton.iter(padded):
                # padded index k is text index k - 1; trim the pattern's padding spaces
                first, last = end - length + 1, end
                while padded[first] == " ":
                    first += 1
                while padded[last] == " ":
                    last -= 1
                hits.append(Hit(action, starts[first - 1], ends[last - 1]))
        return hits
