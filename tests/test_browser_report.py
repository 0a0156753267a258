"""The post-event report in Chromium (issue 16, acceptance 3): the report.html that
`hudong report` wrote after a scripted event opens from disk with no request at all,
shows the event's figures, prints to a PDF whose pages carry them (Playwright
`page.pdf`), and its print layout is screenshotted page by page."""

from __future__ import annotations

import asyncio
import io
import threading
from pathlib import Path
from typing import Any

import pytest

from server.report_cli import write_report
from tests.browser_kit import SHOTS, WAIT_MS
from tests.conftest import running_server
from tests.report_event import POSTS, QUESTIONS, ROOM, play

pytestmark = pytest.mark.slow

A4_CSS_PX = (794, 1123)  # 210 × 297 mm at 96 px per inch


def report_after_event(out: Path) -> dict[str, Any]:
    """Play the event on a node of its own (in a thread: Playwright keeps this one) and
    write its report in both languages."""
    result: dict[str, Any] = {}

    async def run() -> None:
        async with running_server() as live:
            result.update(await play(live))
            token = await live.mint(ROOM, "host")
            for lang in ("zh", "en"):
                await asyncio.to_thread(write_report, live.base, token, ROOM, out / lang, lang)

    thread = threading.Thread(target=lambda: asyncio.run(run()))
    thread.start()
    thread.join(120)
    assert not thread.is_alive() and (out / "en" / "report.html").exists()
    return result


def test_the_report_opens_offline_and_prints_to_pdf(browser, tmp_path):
    from pypdf import PdfReader

    report_after_event(tmp_path)
    for lang, heading in (("zh", "活动报告"), ("en", "Event report")):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        requests: list[str] = []
        context.on("request", lambda request, seen=requests: seen.append(request.url))
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        url = (tmp_path / lang / "report.html").as_uri()
        page.goto(url, wait_until="networkidle")
        assert requests == [url], f"the report asked for more than itself: {requests}"

        # What a reader sees: the heading, the poll's bars, the check-in count, the draw.
        assert page.locator("h1").inner_text().startswith(heading)
        bars = page.locator("#i-poll svg.bars text").all_text_contents()
        assert bars == ["经典", "2 (50.0%)", "香辣", "1 (25.0%)", "蔬菜", "1 (25.0%)"]
        assert page.locator("#i-checkin dl.figures dd").first.inner_text() == "3"
        assert "hudong verify-draw" in page.locator("#i-draw .verify pre").inner_text()
        box = page.locator("#i-poll svg.bars rect").first.bounding_box()
        assert box is not None and box["width"] > 100  # the leading option's bar is drawn
        page.screenshot(path=str(SHOTS / f"report-{lang}.png"), full_page=True)

        # Printed: A4 pages that carry the figures.
        pdf = page.pdf(format="A4", print_background=True)
        (SHOTS / f"report-{lang}.pdf").write_bytes(pdf)
        reader = PdfReader(io.BytesIO(pdf))
        text = " ".join(" ".join(p.extract_text() or "" for p in reader.pages).split())
        assert len(reader.pages) >= 2, len(reader.pages)
        for figure in ("2 (50.0%)", "Great show!", "Is there a vegan bun?", heading):
            assert figure in text, (figure, text[:2000])
        # The print layout, page by page as the PDF cuts it (A4 at 96 dpi).
        page.emulate_media(media="print")
        page.set_viewport_size({"width": A4_CSS_PX[0], "height": A4_CSS_PX[1]})
        assert page.locator("nav").is_hidden()  # the contents are for the screen
        height = page.evaluate("document.documentElement.scrollHeight")
        for n in range(min(len(reader.pages), -(-height // A4_CSS_PX[1]))):
            page.evaluate(f"window.scrollTo(0, {n * A4_CSS_PX[1]})")
            page.screenshot(path=str(SHOTS / f"report-{lang}-page{n + 1}.png"))
        context.close()
    assert QUESTIONS and POSTS
