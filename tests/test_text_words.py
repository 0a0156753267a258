"""The words of a text (server/text_words.py): a text of ASCII only skips jieba's
per-character pass, and must give exactly the terms that jieba's segmentation gives."""

from __future__ import annotations

import random

import jieba  # type: ignore[import-untyped]
import pytest

from server import text_words

# Letters, digits and every character that jieba's blocks or its HMM pass treat apart.
ALPHABET = "abcXYZ019 .-_%&'#+!:\",{}()/\\@?~\t"
PIECES = ("666", "2333", "gg", "nice", "c++", "c#", "AT&T", "12.50", "99%", "don't", "e-mail")


def by_jieba(text: str) -> list[str]:
    """The terms of jieba's own tokens of the text (text_words' filter)."""
    text_words.warm_up()
    return list(text_words.kept(str(t) for t in jieba.lcut(text_words.normalised(text))))


def random_text(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(1, 12)):
        if rng.random() < 0.3:
            parts.append(rng.choice(PIECES))
        else:
            parts.append("".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 9))))
    return "".join(parts)


def test_ascii_texts_give_the_terms_jieba_gives():
    rng = random.Random(20261206)
    texts = [random_text(rng) for _ in range(4000)]
    texts += [
        '{"user":"u00012","text":"dm000012 danmaku 233333 gogo nice!!!!","ts":1700000000000}',
        "ＧＧ ６６６ Ｎｉｃｅ",  # full-width: ASCII once NFKC-normalised
    ]
    for text in texts:
        assert text_words.terms(text) == by_jieba(text), text


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("666 Nice nice GG", ["666", "nice", "gg"]),
        ("price 12.50 or 99% off", ["price", "off"]),  # numbers with a point or a % are no word
        ("I love C++ and e-mail", ["love", "mail"]),  # "e" alone, "c++" is no word
    ],
)
def test_what_a_viewer_would_count_in_english(text: str, terms: list[str]):
    assert text_words.terms(text) == terms == by_jieba(text)


def test_chinese_still_goes_through_jieba():
    assert text_words.terms("番茄酱太好吃了 666") == by_jieba("番茄酱太好吃了 666")
    assert "番茄酱" in text_words.terms("番茄酱太好吃了 666")
