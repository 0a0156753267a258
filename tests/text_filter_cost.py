"""The CPU of the text filter per danmaku (issue 15, Acceptance 10), in one process: no
sockets, no load tool. Each round checks every line of the benign corpus
(tests/data/benign_danmaku.txt) and one hit for every ten of them (evasions of the
default blocklist, links, phones, WeChat ids), as a viewer's danmaku: blocklist, links
and the duplicate memory, as ``TextGuard`` runs them; plus the load tool's own 79-
character danmaku (loadtest/viewers.py), the longest text of a load test.

    python3 -m tests.text_filter_cost            # 3 runs of 20 rounds
    python3 -m tests.text_filter_cost 5 40       # runs, rounds

Prints µs of CPU (process time) per check for each run, and what 500 danmaku/s of
each mix would take of one core.
"""

from __future__ import annotations

import sys
import time

from loadtest.viewers import TEXT_CHARS, TEXT_PAD, TEXT_PREFIX
from server.moderation.screen import TextFilter, load_blocklist
from tests.test_text_filter import EVASIONS, LINKS, lines

# A danmaku of the load tool (loadtest/viewers.py): "lt <send ns> <seq> <pad>", 79 chars.
LOADTEST_TEXT = f"{TEXT_PREFIX}{1733350000123456789} {42:06d} {TEXT_PAD}"[:TEXT_CHARS]


def mixes() -> dict[str, list[str]]:
    benign = lines()
    hits = [text for text, _ in EVASIONS] + [text for text, _ in LINKS]
    mixed = []
    for k, line in enumerate(benign):
        mixed.append(line)
        if k % 10 == 9:
            mixed.append(hits[(k // 10) % len(hits)])
    return {
        "benign corpus": benign,
        "corpus + 10% hits": mixed,
        "hits only": hits,
        "load-test text (79 chars)": [LOADTEST_TEXT] * 200,
    }


def run(text_filter: TextFilter, texts: list[str], rounds: int) -> float:
    """µs of CPU per check, each text from a sender of its own (no repeats refused)."""
    start = time.process_time()
    for r in range(rounds):
        for k, text in enumerate(texts):
            text_filter.check(text, sender=("room", f"u{r}-{k}", "danmaku"), now=float(r))
    return (time.process_time() - start) / (rounds * len(texts)) * 1e6


def main(argv: list[str]) -> None:
    runs = int(argv[0]) if argv else 3
    rounds = int(argv[1]) if len(argv) > 1 else 20
    text_filter = TextFilter(load_blocklist())
    for name, texts in mixes().items():
        run(text_filter, texts, 1)  # warm the caches (folded characters, the OpenCC table)
        costs = [run(text_filter, texts, rounds) for _ in range(runs)]
        shown = ", ".join(f"{c:.1f}" for c in costs)
        share = max(costs) * 500 / 1e6 * 100
        print(f"{name:28} {len(texts):4} texts  µs/check: {shown}  500/s: {share:.2f} % of a core")


if __name__ == "__main__":
    main(sys.argv[1:])
