"""The web page in a real browser: Debian's headless chromium, driven by Playwright, uploads a sample video to
the real server (token on, given through the browser's HTTP login), waits for the job and checks what the
page shows. ``FACEAFFECT_SCREENSHOT=docs/images/serve.png`` also saves the finished page there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import Samples, uvicorn_thread

pytestmark = pytest.mark.slow
TOKEN = "page-token"


def test_page_uploads_a_video_and_shows_the_result(tmp_path: Path, samples: Samples, chromium: str) -> None:
    from playwright.sync_api import sync_playwright

    with uvicorn_thread(tmp_path, token=TOKEN) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            login = {"username": "lab", "password": TOKEN}  # what a person types in the login prompt
            context = browser.new_context(viewport={"width": 1200, "height": 900}, http_credentials=login)
            page = context.new_page()
            requested: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            page.goto(url)
            page.wait_for_selector("#model:has-text('model mbf_ferplus_8')")
            page.set_input_files("#file", str(samples.video))
            page.wait_for_selector("#summary tbody tr", timeout=120_000)
            assert page.is_hidden("#error")
            cells = page.locator("#summary tbody tr").first.locator("td").all_text_contents()
            assert cells[:2] == ["0", "72"]  # track 0, 72 frames
            assert "72 frames, 72 faces, 1 track" in page.text_content("#result-facts")
            video = page.wait_for_function(
                "() => { const v = document.querySelector('#media video');"
                " return v && v.readyState >= 2 && [v.videoWidth, v.videoHeight, Math.round(v.duration)]; }",
                timeout=30_000,
            ).json_value()
            assert video == [640, 360, 2]
            page.wait_for_function("() => document.querySelector('#plots img.expressions')?.naturalWidth > 0")
            assert page.locator("#plots img.valence_arousal").count() == 0  # the model has no VA
            links = page.locator("#downloads a").evaluate_all("links => links.map(link => link.href)")
            assert any(link.endswith("/table?format=csv") for link in links) and len(links) == 5
            assert page.locator("#jobs li").count() == 1
            assert requested and all(address.startswith(url) for address in requested)  # nothing elsewhere
            page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
            if os.environ.get("FACEAFFECT_SCREENSHOT"):
                page.screenshot(path=os.environ["FACEAFFECT_SCREENSHOT"], full_page=True)
        finally:
            browser.close()
