"""The viewer page in Chromium when a token ends (PROTOCOL.md, "Token lifecycle"): a
page opened with a link whose token expires says so, and a guest whose token a host
revoked is told it was withdrawn; neither page breaks."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser_kit import Node

pytestmark = pytest.mark.slow


def told(page: Any, words: str) -> None:
    """Wait until the page's notices say ``words``."""
    page.wait_for_function(
        "(words) => document.getElementById('notices')?.textContent.includes(words)", arg=words
    )


def test_a_link_whose_token_expires_ends_the_session_and_says_so(pages, node: Node):
    node.room("short")
    with node.http() as http:
        r = http.post(
            "/api/v1/rooms/short/tokens", json={"role": "viewer", "user_id": "v1", "ttl_s": 3}
        )
        assert r.status_code == 201, r.text
    page = pages(f"/live/short#token={r.json()['token']}")
    page.wait_for_selector("#conn[data-state='connected']")
    told(page, "Your access to this room has expired")
    page.wait_for_selector("#conn[data-state='disconnected']")


def test_a_guest_whose_token_was_revoked_is_told(pages, node: Node):
    tokens = node.room("revoke")
    page = pages("/live/revoke")
    page.wait_for_selector("#conn[data-state='connected']")
    with node.http(tokens["host"]) as http:
        r = http.post("/api/v1/rooms/revoke/revocations", json={"role": "viewer"})
        assert r.status_code == 201, r.text
    told(page, "Your access to this room was withdrawn")
