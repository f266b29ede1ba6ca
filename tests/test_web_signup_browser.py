"""Readers sign up, leave and come back in a real browser: headless Chromium (Debian's) driven by Selenium.

The form is filled and sent on the page served by waitress, the confirmation
link is taken from the mail the aiosmtpd sink caught, the button is pressed,
and the welcome mail arrives. Skips without Chromium locally, never under CI=true.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from digest.wiring import wire
from helpers import SmtpServer, app_target, chromium, settings_from, subscriber_rows, wait_until

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "templates"


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


def test_a_reader_signs_up_confirms_and_is_welcomed(
    browser: Any, smtp_env: dict[str, str], smtp_server: SmtpServer, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    from digest.web.server import WebServer

    templates = tmp_path / "templates"
    templates.mkdir()
    for name in ("welcome.html.j2", "welcome.txt.j2"):
        (templates / name).write_text((EXAMPLES / name).read_text(encoding="utf-8"), encoding="utf-8")
    environ = {**smtp_env, "DIGEST_TEMPLATE_DIR": str(templates), "DIGEST_SIGNUP_MIN_AGE": "0s"}
    server = WebServer(settings_from(environ), listen=("127.0.0.1", 0), timeout=5)
    _, port = server.start()
    try:
        browser.get(f"http://127.0.0.1:{port}/subscribe")
        browser.find_element(By.NAME, "email").send_keys("reader@example.org")
        browser.find_element(By.NAME, "name").send_keys("Ada Reader")
        assert not browser.find_element(By.NAME, "website").is_displayed()  # the honeypot stays hidden
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait_until(lambda: "Check your inbox" in browser.page_source, "the 'check your inbox' page")

        wait_until(lambda: smtp_server.received, "the confirmation mail")
        [url] = re.findall(r"https://\S+/confirm\?token=\S+", smtp_server.received[0].part("plain"))
        browser.get(f"http://127.0.0.1:{port}{app_target(url)}")
        assert subscriber_rows(environ)["reader@example.org"]["status"] == "pending"
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait_until(lambda: "You are subscribed" in browser.page_source, "the confirmation page")

        wait_until(lambda: len(smtp_server.received) == 2, "the welcome mail")
        welcome = smtp_server.received[1]
        assert welcome.rcpt_tos == ["reader@example.org"]
        assert str(welcome.message["Subject"]).startswith("Welcome to")
        assert subscriber_rows(environ)["reader@example.org"]["status"] == "active"
    finally:
        server.stop()


def test_a_reader_leaves_by_mistake_and_comes_back_from_their_page(
    browser: Any, smtp_env: dict[str, str], smtp_server: SmtpServer
) -> None:
    from selenium.webdriver.common.by import By

    from digest import pipeline
    from digest.web.server import WebServer
    from helpers import add_subscribers

    environ = {**smtp_env, "DIGEST_SIGNUP_MIN_AGE": "0s"}
    add_subscribers(environ, "reader@example.org")
    pipeline.send(wire(settings_from(environ)))
    [url] = set(re.findall(r"https://\S+/subscriber\?token=\S+", smtp_server.received[0].part("plain")))
    server = WebServer(settings_from(environ), listen=("127.0.0.1", 0), timeout=5)
    _, port = server.start()
    try:
        browser.get(f"http://127.0.0.1:{port}{app_target(url)}")
        button = browser.find_element(By.CSS_SELECTOR, "button[type=submit]")
        assert button.text == "Unsubscribe"
        assert button.value_of_css_property("background-color") == "rgba(31, 35, 40, 1)"  # the CSP let the style in
        button.click()
        wait_until(lambda: "You are unsubscribed" in browser.page_source, "the unsubscribed page")
        assert subscriber_rows(environ)["reader@example.org"]["status"] == "unsubscribed"

        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()  # "Subscribe again"
        wait_until(lambda: "Check your inbox" in browser.page_source, "the 'check your inbox' page")
        wait_until(lambda: len(smtp_server.received) == 2, "the confirmation mail")
        [confirm] = re.findall(r"https://\S+/confirm\?token=\S+", smtp_server.received[1].part("plain"))
        browser.get(f"http://127.0.0.1:{port}{app_target(confirm)}")
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait_until(lambda: "You are subscribed" in browser.page_source, "the confirmation page")
        assert subscriber_rows(environ)["reader@example.org"]["status"] == "active"
    finally:
        server.stop()


def test_with_the_challenge_on_the_page_solves_it_and_the_mail_arrives(
    browser: Any, smtp_env: dict[str, str], smtp_server: SmtpServer
) -> None:
    from selenium.webdriver.common.by import By

    from digest.web.server import WebServer

    environ = {**smtp_env, "DIGEST_SIGNUP_MIN_AGE": "0s", "DIGEST_SIGNUP_CHALLENGE": "altcha"}
    server = WebServer(settings_from(environ), listen=("127.0.0.1", 0), timeout=5)
    _, port = server.start()
    try:
        browser.get(f"http://127.0.0.1:{port}/subscribe")  # 127.0.0.1 is a secure context: WebCrypto works
        browser.find_element(By.NAME, "email").send_keys("solver@example.org")
        solution = browser.find_element(By.NAME, "altcha")
        button = browser.find_element(By.CSS_SELECTOR, "button[type=submit]")
        wait_until(lambda: solution.get_attribute("value"), "the script's solution in the hidden field")
        assert button.is_enabled()
        assert not [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]  # no CSP refusal
        button.click()
        wait_until(lambda: "Check your inbox" in browser.page_source, "the 'check your inbox' page")
        wait_until(lambda: smtp_server.received, "the confirmation mail")
        assert [m.rcpt_tos for m in smtp_server.received] == [["solver@example.org"]]
        assert subscriber_rows(environ)["solver@example.org"]["status"] == "pending"
    finally:
        server.stop()
