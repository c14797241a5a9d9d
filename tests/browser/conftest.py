"""Fixtures for driving Debian's headless Chromium against a real server.

Never ``playwright install``: the browser is /usr/bin/chromium (see docs/testing.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.browser.shaping import ShapedNetwork, ShapingUnavailable
from tests.browser.support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    CONSOLE_LOGS,
    DESKTOP,
    HAVE_CHROMIUM,
    OpenPage,
    PageErrors,
)
from tests.helpers import RunningServer, running_server


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "data") as srv:
        yield srv


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not HAVE_CHROMIUM:
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (see docs/testing.md)")
    async with async_playwright() as p:
        chromium = await p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
def page_errors() -> PageErrors:
    return PageErrors()


@pytest.fixture
async def open_page(
    browser: Browser, page_errors: PageErrors, request: pytest.FixtureRequest
) -> AsyncIterator[OpenPage]:
    """``await open_page(label, viewport=DESKTOP)``: a page in a browser context of its own
    (separate storage, like another person's browser). The test fails on any uncaught
    page error or console error."""
    contexts: list[BrowserContext] = []

    async def _open(
        label: str, viewport: dict[str, int] | None = None, locale: str | None = None
    ) -> Page:
        # locale: the browser's language (navigator.language and Accept-Language), e.g. ru-RU
        context = await browser.new_context(viewport=viewport or DESKTOP, locale=locale)
        contexts.append(context)
        page = await context.new_page()
        page.set_default_timeout(10_000)
        page_errors.watch(page, label)
        return page

    yield _open
    for context in contexts:
        await context.close()
    page_errors.save(CONSOLE_LOGS / f"{request.node.name}.log")
    problems = page_errors.unexpected()
    if problems:
        pytest.fail(
            "errors in the browser:\n"
            + "\n".join(problems)
            + "\n\nconsole:\n"
            + "\n".join(page_errors.log)
        )


@pytest.fixture
def network() -> Iterator[ShapedNetwork]:
    """A rate-limited veth into a namespace of its own (tests/browser/shaping.py), closed
    after the test; fails (never skips) where the network cannot be shaped."""
    net = ShapedNetwork()
    try:
        net.start()
    except ShapingUnavailable as exc:
        net.close()
        pytest.fail(f"cannot shape the network here, so this cannot be tested: {exc}")
    yield net
    net.close()
