"""The dashboard in a real browser (Debian chromium driven by Python playwright), JavaScript off:
sign in, spot the unhealthy client, approve a playbook action as compliance, and fail to approve
one's own withdrawal as treasury. Screenshots go to artifacts/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from primeguard.store import repos
from primeguard.web import create_app, running
from tests.web.seed import Seeded

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium "
                                                     "(apt-get install -y chromium); see docs/web.md"),
]


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def site(seeded: Seeded):
    app = create_app(seeded.store, withdrawals=seeded.service, playbook=seeded.playbook,
                     policy_dir=seeded.policy_dir)
    with running(app) as srv:
        yield srv


@pytest.fixture
def contexts(browser) -> Iterator[list]:
    made: list = []
    yield made
    for ctx in made:
        ctx.close()


def sign_in(browser, contexts, site, token: str, path: str = "/"):
    ctx = browser.new_context(java_script_enabled=False, viewport={"width": 1400, "height": 900})
    contexts.append(ctx)
    page = ctx.new_page()
    page.set_default_timeout(10_000)
    page.goto(site.url + path)
    assert page.url.startswith(site.url + "/login")  # not signed in: sent to the login form
    page.fill("#token", token)
    page.click("button:has-text('Sign in')")
    # the click returns once the redirect is committed; the page may still be arriving (a loaded
    # machine): wait for it before anything counts rows
    page.wait_for_url(lambda url: "/login" not in url)
    page.wait_for_load_state("load")
    return page


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_overview_shows_the_unhealthy_client(browser, contexts, site, seeded):
    page = sign_in(browser, contexts, site, seeded.tokens["vera"])
    rows = page.locator("section:has(h2:text-is('Clients')) tbody tr")
    assert rows.count() == 3
    assert "gamma" in rows.nth(0).inner_text() and "blind" in rows.nth(0).inner_text()  # blind spots first
    beta = rows.filter(has_text="beta")
    assert "halt" in beta.inner_text() and "86.38 %" in beta.inner_text()
    assert beta.locator("svg.ltvbar").get_attribute("aria-label").startswith("LTV 86.38 %; warn 75.0 %")
    assert "venue unreachable" in page.locator("#blind-spots").inner_text()
    shot(page, "overview")
    beta.get_by_role("link", name="beta").click()
    page.wait_for_load_state("load")  # the next page, whole, before counting
    assert page.url.endswith("/clients/beta")
    assert page.locator("svg.chart polyline").count() == 1
    assert "crypto -30%" in page.locator("section:has(h2:text-is('Stress'))").inner_text()
    assert "BTC-USDT-PERP" in page.locator("section:has(h2:text-is('Positions'))").inner_text()
    shot(page, "client-beta")
    page.get_by_role("link", name="Capabilities").click()
    page.wait_for_load_state("load")  # the next page, whole, before counting
    first = page.locator("section:has(h2:text-is('Findings')) tbody tr").first
    assert "violation" in first.inner_text() and "beta-bybit-key" in first.inner_text()
    shot(page, "capabilities")
    page.get_by_role("link", name="Policy").click()
    page.wait_for_load_state("load")  # the next page, whole, before counting
    assert "looser" in page.locator(".proposal").inner_text()
    assert page.get_by_role("button", name="Approve and activate").count() == 0  # a viewer cannot approve
    shot(page, "policy")


def test_compliance_approves_a_playbook_action(browser, contexts, site, seeded):
    page = sign_in(browser, contexts, site, seeded.tokens["carol"], "/timeline")
    pending = page.locator("#pending tbody tr").filter(has_text="reduce_only")
    assert pending.count() == 1
    pending.get_by_role("button", name="Approve").click()
    page.wait_for_load_state("load")  # the next page, whole, before counting
    assert page.url.endswith("/timeline")
    assert "Approved reduce_only for beta" in page.locator(".flash-ok").inner_text()
    assert "No playbook action is waiting for approval." in page.locator("#pending").inner_text()
    shot(page, "timeline-approved")
    with seeded.store.session(readonly=True) as s:
        row = repos.get_action(s, seeded.action_id)
    assert (row.state, row.approved_by) == ("approved", "carol")


def test_treasury_cannot_approve_its_own_withdrawal(browser, contexts, site, seeded):
    page = sign_in(browser, contexts, site, seeded.tokens["tom"], "/withdrawals")
    own = page.locator("tbody tr").filter(has_text="150,000")
    assert "requested by you: another person must approve" in own.inner_text()
    assert own.get_by_role("button", name="Approve").count() == 0
    # The server refuses even a hand-made POST with a valid session and CSRF token.
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    forged = page.request.post(f"{site.url}/withdrawals/{seeded.pending_withdrawal}/approve", form={"csrf": csrf})
    assert forged.status == 403 and "self_approval" in forged.text()
    shot(page, "withdrawals-own")
    other = sign_in(browser, contexts, site, seeded.tokens["tina"], "/withdrawals")
    row = other.locator("tbody tr").filter(has_text="150,000")
    row.get_by_role("button", name="Approve").click()
    other.wait_for_load_state("load")  # the next page, whole, before counting
    assert "is approved" in other.locator(".flash-ok").inner_text()
    shot(other, "withdrawals-approved-by-other")
    with seeded.store.session(readonly=True) as s:
        assert [a.approver for a in repos.list_approvals(s, seeded.pending_withdrawal)] == ["tina"]
