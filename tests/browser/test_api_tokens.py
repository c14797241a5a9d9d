"""API tokens and the API reference in a real browser: an organiser makes a read token on the
dashboard, a program uses it (and cannot write with it), the organiser revokes it; the
reference page renders the OpenAPI description under the pages' Content-Security-Policy."""

from __future__ import annotations

import aiohttp
import pytest
from playwright.async_api import expect

from tests.browser.support import DESKTOP, PHONE, SCREENSHOTS, OpenPage
from tests.browser.test_dashboard import add_user, sign_in
from tests.helpers import RunningServer

pytestmark = pytest.mark.browser


async def test_an_organiser_makes_uses_and_revokes_a_token(
    server: RunningServer, open_page: OpenPage
) -> None:
    add_user(server, "olga")
    page = await open_page("olga")
    await sign_in(page, server, "olga")
    await page.get_by_test_id("nav-tokens").click()
    await expect(page).to_have_url(server.base_url + "/dashboard/tokens")
    await expect(page.get_by_test_id("tokens-empty")).to_be_visible()
    # an organiser may make read and write tokens, not admin ones
    await expect(page.get_by_test_id("token-scope-admin")).to_have_count(0)
    await page.get_by_test_id("token-name-input").fill("CRM sync")
    await page.get_by_test_id("token-scope-read").check()
    await page.get_by_test_id("token-add").click()
    secret = (await page.get_by_test_id("token-secret").inner_text()).strip()
    assert secret.startswith("wbt_")
    row = page.get_by_test_id("token-row")
    await expect(row).to_have_count(1)
    await expect(row.get_by_test_id("token-scope")).to_have_text("read")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / "api-tokens-desktop.png", full_page=True)

    # A program uses it: it reads, and may not write.
    base = server.base_url + "/api/v1"
    bearer = {"Authorization": f"Bearer {secret}"}
    async with aiohttp.ClientSession() as http:
        async with http.get(base + "/me", headers=bearer) as resp:
            me = await resp.json()
        assert me["scope"] == "read" and me["account"]["username"] == "olga"
        async with http.post(base + "/events", json={"title": "No"}, headers=bearer) as resp:
            assert resp.status == 403
            assert (await resp.json())["error"]["code"] == "insufficient-scope"

        # The page says when it was last used; revoking asks first, then the token is refused.
        await page.goto(server.base_url + "/dashboard/tokens")
        await expect(row).not_to_contain_text("never")
        page.once("dialog", lambda dialog: dialog.accept())
        await row.get_by_test_id("token-revoke").click()
        await expect(page.get_by_test_id("token-notice")).to_be_visible()
        await expect(page.get_by_test_id("tokens-empty")).to_be_visible()
        async with http.get(base + "/me", headers=bearer) as resp:
            assert resp.status == 401


async def test_the_api_reference_page(server: RunningServer, open_page: OpenPage) -> None:
    page = await open_page("reader", viewport=DESKTOP)
    await page.goto(server.base_url + "/api/docs")
    await expect(page.get_by_role("heading", name="API reference", level=1)).to_be_visible()
    operations = page.get_by_test_id("api-operation")
    assert await operations.count() >= 60
    await expect(
        page.locator(
            '[data-testid="api-operation"][data-path="/api/v1/events"][data-method="POST"]'
        )
    ).to_contain_text("Token scope: write")
    # a response's type links to its schema
    await page.locator('#op-create_event a[href="#schema-Event"]').first.click()
    await expect(page.locator("#schema-Event")).to_be_in_viewport()
    await page.screenshot(path=SCREENSHOTS / "api-docs-desktop.png")
    phone = await open_page("phone", viewport=PHONE)
    await phone.goto(server.base_url + "/api/docs")
    await phone.screenshot(path=SCREENSHOTS / "api-docs-phone.png")
    width = await phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"] + 1, width  # nothing wider than the phone
