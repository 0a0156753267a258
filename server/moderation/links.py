"""Links and contact details in a viewer's text: URLs (also ``www.``, bare domains and
dodged dots such as ``evil。example。com``, ``evil 点 com``, ``evil dot com``), phone
numbers (Chinese mobiles, international numbers with ``+``) and WeChat / QQ ids
("加微信 abc123", "vx: abc_123", "QQ 12345678"). Blocked unless the room allows them
(the room setting ``allow_links``); pure code.

Detection reads its own copy of the text: NFKC, case folded, zero-width characters
dropped, look-alike letters mapped and dot-like marks made dots; repeats are kept
(``www``) and the blocklist's joining of spaced letters is not done.
"""

from __future__ import annotations

import re
import unicodedata

from server.moderation.text import BIDI_CONTROLS, HOMOGLYPHS

# Full stops of other scripts, and words for "dot", between two parts of a name.
_DOTS = re.compile(r"\s*(?:[。．｡·•・]|点|點|\(\s*dot\s*\)|\[\s*dot\s*\]|\bdot\b|\[\.\]|\(\.\))\s*")
_DOT_HINT = re.compile(r"[。．｡·•・点點]|dot|\[\.\]|\(\.\)")
_SPACED_DOT = re.compile(r"(?<=[a-z0-9])\s*\.\s*(?=[a-z0-9])")
_INVISIBLE = {ord(c): None for c in ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad")}
_INVISIBLE.update({ord(c): None for c in BIDI_CONTROLS})
_LOOKALIKE = str.maketrans(HOMOGLYPHS)

TLDS = (
    "com|net|org|cn|io|cc|co|me|tv|xyz|top|vip|info|biz|club|site|online|shop|store|app|"
    "link|live|fun|ink|ltd|work|wang|pro|tk|ml|ga|cf|gq|ru|uk|de|jp|kr|hk|tw|us|sg|au|"
    "in|fr|ly|gl|to|gg|win|bet|dev|ai|so|la|mobi|asia|name|tech|cloud|icu|cyou|buzz|中国|网址"
)
# Top-level domains that are not also common English words: after a spaced dot
# ("evil . com") only these count, so "I agree. me too" stays a sentence.
STRONG_TLDS = "com|net|org|cn|cc|xyz|top|vip|info|biz|club|site|online|ltd|wang|icu|cyou|中国"
URL = re.compile(
    r"(?:https?|ftp)\s*:\s*/\s*/|www\s*\.\s*[a-z0-9]"
    rf"|(?<![a-z0-9.])[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.(?:{TLDS})(?![a-z0-9])"
)
SPACED_URL = re.compile(
    rf"(?<![a-z0-9.])[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.(?:{STRONG_TLDS})(?![a-z0-9])"
)
# A Chinese mobile (1[3-9] and 9 more digits; spaces or dashes between groups), also
# with +86; an international number written with its "+" and 7..14 more digits.
PHONE = re.compile(
    r"(?<!\d)(?:\+?86[\s-]*)?1[3-9]\d(?:[\s-]*\d){8}(?!\d)"
    r"|\+\s*\d{1,3}(?:[\s().-]*\d){6,14}(?!\d)"
)
CONTACT = re.compile(
    r"(?:微信|威信|薇信|维信|微x|v信|vx|wx|weixin|wechat|vchat|加v|\+v)"
    r"\s*(?:号|id)?\s*[:：]?\s*[a-z][-_a-z0-9]{5,19}(?![a-z0-9])"
    r"|(?:q\s*q|扣扣|企鹅|q群|qq群)\s*(?:号|群)?\s*[:：]?\s*[1-9]\d{4,11}(?!\d)"
)


def fold(text: str) -> str:
    """NFKC, zero-width and bidi characters dropped, case folded, look-alikes mapped."""
    folded = unicodedata.normalize("NFKC", text).translate(_INVISIBLE).casefold()
    return folded.translate(_LOOKALIKE)


def link_copy(text: str) -> str:
    """The copy that links and contacts are looked for in."""
    # NFKC keeps ASCII, which holds no invisible or look-alike letter: lower() folds it
    # (the copy of a 100-character text: 11 µs -> 2 µs).
    text = text.lower() if text.isascii() else fold(text)
    return _DOTS.sub(".", text) if _DOT_HINT.search(text) else text


def find_link(text: str) -> str | None:
    """The reason the text is a link or a contact (``link``, ``phone``, ``contact``), or
    None."""
    copy = link_copy(text)
    # Cheap tests first: no dot or slash, no link (each form of URL and SPACED_URL holds
    # one); fewer than 7 digits, no phone.
    if ("." in copy or "/" in copy) and (
        URL.search(copy) or SPACED_URL.search(_SPACED_DOT.sub(".", copy))
    ):
        return "link"
    if sum(map(str.isdigit, copy)) >= 7 and PHONE.search(copy):
        return "phone"
    if CONTACT.search(copy):
        return "contact"
    return None
