"""The pages speak the viewer's language (issue 13, item 11): every error code has
Chinese and English words in clients/web/i18n.js, and an anonymous viewer's default
name is in the language it joins with (PROTOCOL.md, "join")."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from protocol.codes import ERRORS
from server.auth import guest_name
from tests.conftest import LiveServer

ROOT = Path(__file__).resolve().parent.parent
I18N = ROOT / "clients" / "web" / "i18n.js"
CLIENT = ROOT / "clients" / "js" / "hudong.js"
ENTRY = re.compile(r'^\s*"([\w.]+)":\s*"((?:\\.|[^"\\])*)",?\s*$', re.M)
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def words(text: str) -> dict[str, dict[str, str]]:
    """The en and zh tables of an i18n.js text, key -> words."""
    english, chinese = re.split(r"^\s*zh: \{\s*$", text, maxsplit=1, flags=re.M)
    return {"en": dict(ENTRY.findall(english)), "zh": dict(ENTRY.findall(chinese))}


def client_error_codes() -> list[str]:
    """The codes the JS client makes itself (CLIENT_ERRORS: timeout, disconnected, …)."""
    block = CLIENT.read_text("utf-8").split("export const CLIENT_ERRORS", 1)[1].split("});", 1)[0]
    return re.findall(r"^\s*(\w+): \{", block, re.M)


# What REST answers besides the table's codes (server/api/http.py, server/app.py).
REST_CODES = ["body_too_large", "not_found", "method_not_allowed", "http_error"]


def missing_words(tables: dict[str, dict[str, str]], codes: list[str]) -> list[str]:
    return [
        f"{language}: error.{code}"
        for code in codes
        for language in ("en", "zh")
        if not tables[language].get(f"error.{code}", "").strip()
    ]


def test_every_error_code_has_chinese_and_english_words():
    tables = words(I18N.read_text("utf-8"))
    codes = [e.name for e in ERRORS] + client_error_codes() + REST_CODES
    assert {"timeout", "disconnected"} <= set(codes)  # the client's codes were found
    assert missing_words(tables, codes) == []
    for code in codes:
        # The same details fill both languages' words (a limit in one is one in both).
        en, zh = (tables[lang][f"error.{code}"] for lang in ("en", "zh"))
        assert set(PLACEHOLDER.findall(en)) == set(PLACEHOLDER.findall(zh)), code
    # Details the server sends are interpolated, not left out.
    assert "{limit}" in tables["zh"]["error.too_many_picks"]
    assert "{limit}" in tables["zh"]["error.too_few_picks"]


def test_a_code_without_words_fails_the_check():
    tables = words('  en: {\n    "error.a": "A",\n  },\n  zh: {\n    "error.a": "甲",\n  },\n')
    assert tables == {"en": {"error.a": "A"}, "zh": {"error.a": "甲"}}
    assert missing_words(tables, ["a", "new_code"]) == ["en: error.new_code", "zh: error.new_code"]


@pytest.mark.parametrize(
    ("lang", "word"),
    [
        ("zh-CN", "观众"),
        ("zh", "观众"),
        ("zh-Hant-TW", "观众"),
        ("en-US", "guest"),
        (None, "guest"),
    ],
)
def test_a_guest_s_default_name_is_in_its_language(lang, word):
    assert guest_name("guest-1a2b309ca", lang) == f"{word} 09ca"


async def test_a_chinese_guest_is_named_in_chinese_for_everyone(live: LiveServer):
    await live.create_room("zh")
    phone = await live.connect()
    joined = await phone.join("zh", lang="zh-CN")
    you: dict[str, Any] = joined["you"]
    assert you["name"] == f"观众 {you['id'][-4:]}", you
    again = await live.connect()  # a reload: the guest's token keeps the name and the id
    rejoined = await again.join("zh", token=joined["token"], lang="zh-CN")
    assert rejoined["you"] == you
    other = await live.connect()
    assert (await other.join("zh"))["you"]["name"].startswith("guest ")
    named = await live.connect()
    assert (await named.join("zh", lang="zh-CN", name="小明"))["you"]["name"] == "小明"
    # Another viewer sees the Chinese name next to the guest's danmaku.
    ack = await again.command("danmaku", text="你好")
    assert ack["type"] == "ack", ack
    while True:
        message = await other.recv_type("batch")
        sent = [e for e in message["events"] if e.get("type") == "danmaku"]
        if sent:
            assert sent[0]["user"]["name"] == you["name"], sent
            break


async def test_a_lang_that_is_no_language_tag_is_refused(live: LiveServer):
    await live.create_room("zh")
    phone = await live.connect()
    reply = await phone.command("join", room="zh", lang="<script>")
    assert reply["type"] == "error" and reply["code"] == "invalid_field", reply
    assert "lang" in reply["message"]
