"""Words of a text, as people count them: the word cloud's terms and the cockpit's top
words share this segmentation.

NFKC-normalised and case-folded, then segmented with jieba, so Chinese counts words
(番茄酱), not characters; punctuation, single ASCII characters and a short
English/Chinese stopword list are dropped; at most :data:`MAX_TERMS` distinct terms per
text, each at most :data:`MAX_TERM_CHARS` characters. No stemming. Pure code, no I/O
(jieba's dictionary ships with the package and is read once, by :func:`warm_up`).
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from collections.abc import Iterable
from functools import lru_cache

with warnings.catch_warnings():
    # jieba 0.42 imports pkg_resources, which newer setuptools deprecate.
    warnings.simplefilter("ignore")
    import jieba  # type: ignore[import-untyped]

MAX_TERMS = 20
MAX_TERM_CHARS = 32

STOPWORDS: frozenset[str] = frozenset(
    """
    a an the and or but if of to in on at by for with about as from into onto than then so
    is are was were be been being am do does did done have has had having will would shall
    should can could may might must i me my mine we us our ours you your yours he him his
    she her hers it its they them their theirs this that these those there here what which
    who whom whose when where why how all any some no not nor too very just also only own
    same such up down out over under again further once more most other each both few s t
    don didn doesn isn wasn aren won can't don't i'm it's that's you're let's im dont
    的 了 是 在 我 你 他 她 它 我们 你们 他们 她们 它们 这 那 这个 那个 这些 那些 这里 那里
    和 与 及 或 也 就 都 而 着 过 一 一个 个 有 没 没有 吗 呢 吧 啊 哦 呀 嗯 哈 么 嘛 啦 哎
    诶 喔 哇 呵 嘿 很 太 还 又 被 把 给 让 对 从 到 向 为 以 之 其 于 但 但是 所以 因为 如果
    就是 还是 什么 怎么 自己 这样 那样 一下 一些 觉得 地 得 说 要 会 能 可以 可能 应该 真的
    非常 特别 比较 已经 然后
    """.split()
)


def warm_up() -> None:
    """Load jieba's dictionary now (about a second) rather than at the first text."""
    jieba.setLogLevel(60)  # its "Building prefix dict" chatter goes to stderr otherwise
    jieba.initialize()


def terms(text: str) -> list[str]:
    """The distinct terms of ``text``, in order of appearance."""
    return list(_terms(text))


# What jieba makes of a text of ASCII only (its dictionary's ASCII words all hold a '#' or
# a '+', or capitals that the case-fold removed): each run of [a-z0-9+#&._%-] is one
# block, which its HMM pass splits into these (jieba/finalseg re_skip); the pieces
# between them are punctuation, which the filter drops. Found here with one regex
# instead of jieba's per-character pass: 230 µs -> 5 µs for a 100-character text
# (tests/test_text_words.py holds the two to the same answer).
_ASCII_TOKENS = re.compile(r"[a-z0-9]+(?:\.\d+)?%?")


def normalised(text: str) -> str:
    """The copy of a text that is segmented: NFKC-normalised, case-folded."""
    return unicodedata.normalize("NFKC", text).casefold()


def _tokens(text: str) -> list[str]:
    """A normalised text's tokens, as jieba cuts it."""
    if text.isascii() and "#" not in text and "+" not in text:
        return _ASCII_TOKENS.findall(text)
    warm_up()
    return [str(token) for token in jieba.lcut(text)]


# Danmaku repeat themselves ("666", "哈哈哈哈"): a repeated text is segmented once.
@lru_cache(maxsize=4096)
def _terms(text: str) -> tuple[str, ...]:
    return kept(_tokens(normalised(text)))


def kept(tokens: Iterable[str]) -> tuple[str, ...]:
    """The terms among a normalised text's tokens: distinct, in order, no punctuation,
    stopwords or single ASCII characters, at most :data:`MAX_TERMS`."""
    found: list[str] = []
    seen: set[str] = set()
    for token in tokens:
        term = token.strip().strip("'-_")
        if (
            not term
            or term in seen
            or term in STOPWORDS
            or len(term) > MAX_TERM_CHARS
            or (len(term) == 1 and term.isascii())
            # letters and digits, with ' - _ inside (most terms: one C call decides)
            or not (term.isalnum() or all(ch.isalnum() or ch in "'-_" for ch in term))
        ):
            continue
        seen.add(term)
        found.append(term)
        if len(found) == MAX_TERMS:
            break
    return tuple(found)
