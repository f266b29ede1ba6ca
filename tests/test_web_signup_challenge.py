"""DIGEST_SIGNUP_CHALLENGE=altcha: the proof-of-work challenge, over the real waitress server and aiosmtpd.

Each challenge is solved here with hashlib exactly as templates/web/challenge.js
solves it with WebCrypto (SHA-256 of salt + number, counting up from 0), and
posted in the same shape (base64 of the JSON object). The browser itself
solving it is in test_web_signup_browser.py.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from digest import signup_challenge
from helpers import SmtpServer
from test_web_signup import Site, form_token_of, serve

CHALLENGE_ON = {"DIGEST_SIGNUP_CHALLENGE": "altcha"}


def challenge_of(page: str) -> dict[str, Any]:
    match = re.search(r'data-challenge="([^"]+)"', page)
    assert match, page
    challenge: dict[str, Any] = json.loads(html.unescape(match.group(1)))
    return challenge


def solve(challenge: dict[str, Any]) -> str:
    """What the page's script puts in the ``altcha`` field."""
    for number in range(challenge["maxNumber"] + 1):
        if hashlib.sha256(f"{challenge['salt']}{number}".encode()).hexdigest() == challenge["challenge"]:
            fields = {key: challenge[key] for key in ("algorithm", "challenge", "salt", "signature")}
            return base64.b64encode(json.dumps({**fields, "number": number}).encode()).decode()
    raise AssertionError("no number solves the challenge")


def payload(solution: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.b64decode(solution))
    return decoded


def encode(data: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(data).encode()).decode()


def neutral(body: str) -> str:
    """A form page with its fresh token and challenge blanked: what stays is what a bot could learn from."""
    body = re.sub(r'name="form_token" value="[^"]+"', 'name="form_token" value=""', body)
    return re.sub(r'data-challenge="[^"]+"', 'data-challenge=""', body)


@pytest.fixture
def plain_env(smtp_env: dict[str, str]) -> dict[str, str]:
    return {**smtp_env, "DIGEST_SIGNUP_MIN_AGE": "0s"}  # no test sleeps


@pytest.fixture
def challenge_env(plain_env: dict[str, str]) -> dict[str, str]:
    return {**plain_env, **CHALLENGE_ON}


@pytest.fixture
def site(challenge_env: dict[str, str]) -> Iterator[Site]:
    yield from serve(challenge_env)


def fresh_form(site: Site) -> tuple[str, dict[str, Any]]:
    page = site.request("GET", "/subscribe")
    assert page.status == 200
    return form_token_of(page.body), challenge_of(page.body)


def post(site: Site, email: str, token: str, solution: str | None) -> Any:
    fields = {"email": email, "form_token": token}
    if solution is not None:
        fields["altcha"] = solution
    return site.request("POST", "/subscribe", fields)


def test_the_page_embeds_a_challenge_and_allows_only_its_own_script(site: Site) -> None:
    page = site.request("GET", "/subscribe")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "worker-src" not in policy and "connect-src" not in policy  # default-src 'none' still covers both
    challenge = challenge_of(page.body)
    assert challenge["algorithm"] == "SHA-256" and challenge["maxNumber"] == signup_challenge.MAX_NUMBER
    expires = int(re.findall(r"expires=(\d+)", challenge["salt"])[0])
    assert 86400 - 60 <= expires - time.time() <= 86400  # as long as the form token lives
    assert "<noscript>" in page.body and "needs JavaScript" in page.body
    [src] = re.findall(r'<script src="([^"]+)" defer></script>', page.body)
    assert src == "/digest/static/challenge.js"  # DIGEST_PUBLIC_URL's path: works behind a stripping proxy too
    script = site.request("GET", src)
    assert script.status == 200 and script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "crypto.subtle.digest" in script.body
    assert site.request("GET", "/static/challenge.js").body == script.body
    assert challenge_of(site.request("GET", "/subscribe").body) != challenge  # fresh on every page


def test_a_solved_challenge_sends_the_confirmation(site: Site, smtp_server: SmtpServer) -> None:
    token, challenge = fresh_form(site)
    answer = post(site, "reader@example.org", token, solve(challenge))
    assert answer.status == 200 and "Check your inbox" in answer.body
    assert [m.rcpt_tos for m in smtp_server.received] == [["reader@example.org"]]


def tampered_number(solution: str) -> str:
    return encode({**payload(solution), "number": payload(solution)["number"] + 1})


def tampered_signature(solution: str) -> str:
    data = payload(solution)
    return encode({**data, "signature": "0" * len(data["signature"])})


def tampered_expiry(solution: str) -> str:
    data = payload(solution)  # a later expiry in the salt: the hash, and so the signature, no longer match
    return encode({**data, "salt": re.sub(r"expires=\d+", f"expires={int(time.time()) + 10 * 86400}", data["salt"])})


@pytest.mark.parametrize(
    ("case", "spoil"),
    [
        ("missing", lambda solution: None),
        ("empty", lambda solution: ""),
        ("not base64", lambda solution: "%%%not-base64%%%"),
        ("not an object", lambda solution: base64.b64encode(b"[1, 2]").decode()),
        ("a string number", lambda solution: encode({**payload(solution), "number": "7"})),
        ("wrong number", tampered_number),
        ("forged signature", tampered_signature),
        ("longer expiry", tampered_expiry),
    ],
)
def test_a_missing_or_tampered_solution_sends_nothing_and_gets_the_form_again(
    site: Site, smtp_server: SmtpServer, case: str, spoil: Any
) -> None:
    token, challenge = fresh_form(site)
    answer = post(site, "target@example.org", token, spoil(solve(challenge)))
    assert answer.status == 200 and "One more step" in answer.body, case
    assert 'value="target@example.org"' in answer.body  # pre-filled, as for every bot path
    assert smtp_server.received == []


def test_an_expired_challenge_sends_nothing(site: Site, challenge_env: dict[str, str], smtp_server: SmtpServer) -> None:
    token, _ = fresh_form(site)
    # Issued by this server's key two days ago (a day is how long a challenge lives).
    stale = signup_challenge.issue(challenge_env["DIGEST_SECRET"], time.time() - 2 * 86400, 86400, max_number=1000)
    answer = post(site, "late@example.org", token, solve(stale))
    assert "One more step" in answer.body
    assert smtp_server.received == []


def test_a_challenge_of_another_secret_sends_nothing(site: Site, smtp_server: SmtpServer) -> None:
    token, _ = fresh_form(site)
    foreign = signup_challenge.issue("another site's secret", time.time(), 86400, max_number=1000)
    assert "One more step" in post(site, "other@example.org", token, solve(foreign)).body
    assert smtp_server.received == []


def test_a_solution_works_once(site: Site, smtp_server: SmtpServer) -> None:
    token, challenge = fresh_form(site)
    solution = solve(challenge)
    assert "Check your inbox" in post(site, "one@example.org", token, solution).body
    second_token, _ = fresh_form(site)  # a fresh form token: only the solution is replayed
    replayed = post(site, "two@example.org", second_token, solution)
    assert replayed.status == 200 and "One more step" in replayed.body
    assert [m.rcpt_tos for m in smtp_server.received] == [["one@example.org"]]


def test_every_bot_path_gets_the_same_page(site: Site, smtp_server: SmtpServer) -> None:
    token, challenge = fresh_form(site)
    used = solve(challenge)
    post(site, "first@example.org", token, used)
    pages = []
    for spoiled in (None, tampered_number(used), used):  # missing, wrong, replayed
        token, _ = fresh_form(site)
        answer = post(site, "bot@example.org", token, spoiled)
        pages.append((answer.status, neutral(answer.body)))
    no_token = site.request("POST", "/subscribe", {"email": "bot@example.org"})  # the static blog's snippet
    pages.append((no_token.status, neutral(no_token.body)))
    assert len(set(pages)) == 1
    assert len(smtp_server.received) == 1


def test_with_the_challenge_off_the_page_has_no_script(plain_env: dict[str, str], smtp_server: SmtpServer) -> None:
    for site in serve(plain_env):
        page = site.request("GET", "/subscribe")
        assert "script-src" not in page.headers["content-security-policy"]
        assert "<script" not in page.body and "data-challenge" not in page.body and "noscript" not in page.body
        assert site.request("GET", "/static/challenge.js").status == 404
        assert "Check your inbox" in site.subscribe("plain@example.org").body  # no solution needed
    assert [m.rcpt_tos for m in smtp_server.received] == [["plain@example.org"]]
