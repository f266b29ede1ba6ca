"""Hostile input, tried as an attacker would: feed text, subscriber rows and config values.

Asserts on the exact bytes of the produced message (header lines, MIME parts)
and on a real send through aiosmtpd, with and without DKIM: the sink receives
exactly the intended recipients and headers, and every reader's copy carries
only their own address and unsubscribe link.
"""

from __future__ import annotations

import base64
import re
import sqlite3
import ssl
import subprocess
from pathlib import Path
from typing import Any

import dkim
import pytest

from digest.errors import ConfigError
from digest.wiring import wire
from helpers import RecordingHandler, SmtpServer, run_cli, running_smtp, settings_from, start_smtp

EW_CRLF = "=?utf-8?q?Notes=0D=0ABcc:_x@evil.example=0D=0AContent-Type:_text/html=0D=0A=0D=0Aowned?="
LEGACY_LOOKALIKES = ("DIGEST-PERSONAL-RECIPIENT", "DIGEST-PERSONAL-UNSUBSCRIBE-URL")
TRACKER = "https://tracker.example/p.gif?e=DIGEST-PERSONAL-RECIPIENT&amp;u=DIGEST-PERSONAL-UNSUBSCRIBE-URL"
GUESSED = "DIGESTRECIPIENT0123456789abcdef01234567 DIGESTUNSUBSCRIBEURL0123456789abcdef01234567"


def hostile_feed(path: Path, feed_title: str, entry_title: str, author: str) -> Path:
    body = (
        f'<p>Hello <img src="{TRACKER}"> DIGEST-PERSONAL-RECIPIENT and '
        f'<a href="https://evil.example/?u=DIGEST-PERSONAL-UNSUBSCRIBE-URL">x</a> {GUESSED}</p>'
    )
    xml = f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>{feed_title}</title>
  <link href="https://blog.example/"/>
  <id>urn:hostile</id>
  <updated>2026-11-20T08:00:00Z</updated>
  <entry>
    <title>{entry_title}</title>
    <link href="https://blog.example/one"/>
    <id>urn:hostile:1</id>
    <updated>2026-11-20T08:00:00Z</updated>
    <author><name>{author}</name></author>
    <content type="html"><![CDATA[{body}]]></content>
  </entry>
</feed>
"""
    path.write_text(xml, encoding="utf-8")
    return path


@pytest.fixture
def hostile_env(smtp_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    feed = hostile_feed(
        tmp_path / "hostile.atom", EW_CRLF + " \u202eblog", EW_CRLF + "\x00 title\r\nBcc: y@evil.example", EW_CRLF
    )
    return {
        **smtp_env,
        "DIGEST_FEED_URL": str(feed),
        "DIGEST_FROM": f'"{EW_CRLF}" <news@fieldnotes.example.org>',
        "DIGEST_REPLY_TO": f'"{EW_CRLF}" <editor@fieldnotes.example.org>',
        "DIGEST_SUBJECT": "{{ feed_title }} / {{ newest.title }} / {{ newest.author }}",
    }


def header_lines(data: bytes) -> list[bytes]:
    head = data.split(b"\r\n\r\n", 1)[0]
    return re.split(rb"\r\n(?![ \t])", head)


def assert_clean_message(data: bytes, recipient: bytes) -> None:
    names = [line.split(b":", 1)[0].lower() for line in header_lines(data)]
    assert b"bcc" not in names and names.count(b"content-type") == 1
    assert names.count(b"to") == 1 and names.count(b"from") == 1 and names.count(b"subject") == 1
    assert sorted(set(names)) == sorted(names)  # no header twice
    boundary = re.search(rb'boundary="([^"]+)"', data)
    assert boundary is not None
    lines = data.split(b"\r\n")
    marks = [n for n, line in enumerate(lines) if line.startswith(b"--" + boundary.group(1))]
    assert len(marks) == 3 and lines[marks[2]].endswith(b"--")  # exactly two parts, then the end
    assert [lines[n + 1] for n in marks[:2]] == [b'Content-Type: text/plain; charset="utf-8"',
                                               b'Content-Type: text/html; charset="utf-8"']  # fmt: skip
    assert b"\x00" not in data and "\u202e".encode() not in data
    (to,) = [line for line in header_lines(data) if line.lower().startswith(b"to:")]
    assert to.endswith(b"<" + recipient + b">") or to == b"To: " + recipient


def test_a_hostile_feed_and_names_cannot_forge_headers_in_a_real_send(
    hostile_env: dict[str, str], smtp_server: SmtpServer
) -> None:
    for address, name in (("ada@example.com", EW_CRLF), ("grace@b\u00fccher.example", "Grace\r\nBcc: z@evil.example")):
        assert run_cli(["subscribers", "add", address, "--name", name], hostile_env).exit_code == 0

    result = run_cli(["send"], hostile_env)

    assert result.exit_code == 0, result.output
    assert sorted(smtp_server.handler.recipients()) == ["ada@example.com", "grace@xn--bcher-kva.example"]
    for received in smtp_server.received:
        (rcpt,) = received.rcpt_tos
        assert_clean_message(received.data, rcpt.encode())
        message = received.message
        assert message["Bcc"] is None
        assert message["From"].addresses[0].addr_spec == "news@fieldnotes.example.org"
        assert message["Reply-To"].addresses[0].addr_spec == "editor@fieldnotes.example.org"
        assert message["Subject"].startswith("Notes Bcc: x@evil.example Content-Type: text/html owned")
        assert "\n" not in message["Subject"] and len(message["Subject"]) <= 150
        assert message["List-Id"].endswith("<digest.fieldnotes.example.org>")
        assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]


def test_feed_text_that_looks_like_a_placeholder_reaches_every_reader_unchanged(
    hostile_env: dict[str, str], smtp_server: SmtpServer
) -> None:
    for address in ("ada@example.com", "grace@example.net"):
        assert run_cli(["subscribers", "add", address], hostile_env).exit_code == 0

    assert run_cli(["send"], hostile_env).exit_code == 0

    assert len(smtp_server.received) == 2
    for received in smtp_server.received:
        (rcpt,) = received.rcpt_tos
        html, text = received.part("html"), received.part("plain")
        assert (
            'src="https://tracker.example/p.gif?e=DIGEST-PERSONAL-RECIPIENT&amp;u=DIGEST-PERSONAL-UNSUBSCRIBE-URL"'
            in html
        )
        assert 'href="https://evil.example/?u=DIGEST-PERSONAL-UNSUBSCRIBE-URL"' in html
        for word in GUESSED.split():
            assert word in html and word in text
        for lookalike in LEGACY_LOOKALIKES:
            assert lookalike in html and lookalike in text
        # The reader's own values are only where the template put them: the footer.
        assert html.count(rcpt) == 1 and text.count(rcpt) == 1
        assert html.count("/unsubscribe?token=") == 1 and text.count("/unsubscribe?token=") == 1
        rest = (html + text).replace(GUESSED.split()[0], "").replace(GUESSED.split()[1], "")
        assert not re.search(r"DIGEST(RECIPIENT|UNSUBSCRIBEURL)[0-9a-f]{24}", rest)  # none left unfilled


def test_a_resumed_digest_fills_in_the_placeholders_it_was_rendered_with(
    hostile_env: dict[str, str], smtp_server: SmtpServer
) -> None:
    from digest import feedcheck, planning, store

    assert run_cli(["subscribers", "add", "ada@example.com"], hostile_env).exit_code == 0
    settings = settings_from(hostile_env)
    db = store.open_db(settings.db_path)
    try:
        feedcheck.check_feeds(db, wire(settings))
        plan = planning.create_next_digest(db, wire(settings))
    finally:
        db.close()
    assert plan is not None and re.fullmatch(r"[0-9a-f]{24}", plan.placeholder_nonce)

    assert run_cli(["send"], hostile_env).exit_code == 0  # resumes the stored digest

    (received,) = smtp_server.received
    assert received.part("plain").count("ada@example.com") == 1
    assert plan.placeholder_nonce not in received.data.decode("utf-8", "replace")


def test_a_dkim_signed_hostile_message_verifies_and_signs_only_real_headers(
    hostile_env: dict[str, str], smtp_server: SmtpServer, tmp_path: Path
) -> None:
    key_file = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key_file), "1024"], check=True, capture_output=True)
    public = subprocess.run(["openssl", "rsa", "-in", str(key_file), "-pubout", "-outform", "DER"],
                            check=True, capture_output=True).stdout  # fmt: skip
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    signed_env = {**hostile_env, "DIGEST_DKIM_SELECTOR": "s1", "DIGEST_DKIM_DOMAIN": "fieldnotes.example.org",
                  "DIGEST_DKIM_KEY_FILE": str(key_file)}  # fmt: skip
    assert run_cli(["subscribers", "add", "ada@example.com", "--name", EW_CRLF], signed_env).exit_code == 0

    assert run_cli(["send"], signed_env).exit_code == 0

    (received,) = smtp_server.received
    assert_clean_message(received.data, b"ada@example.com")
    assert dkim.verify(received.data, dnsfunc=lambda name, timeout=5: record)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("DIGEST_UNSUBSCRIBE_MAILTO", "a@b.example>, <https://evil.example/x",
         "DIGEST_UNSUBSCRIBE_MAILTO: not an email"),
        ("DIGEST_PUBLIC_URL", "https://blog.example/digest?x=1", "DIGEST_PUBLIC_URL: must not have a query"),
        ("DIGEST_PUBLIC_URL", "https://blog.example/digest#top", "DIGEST_PUBLIC_URL: must not have a query"),
        ("DIGEST_PUBLIC_URL", "https://blog.example/my digest", "DIGEST_PUBLIC_URL: must not contain spaces"),
        ("DIGEST_PUBLIC_URL", "https://user:pw@blog.example/digest", "DIGEST_PUBLIC_URL: must not contain a user"),
        ("DIGEST_FROM", "News <n\u00e9ws@blog.example>", "DIGEST_FROM: the part before @ must be ASCII"),
        ("DIGEST_FROM", "News <news@-bad-.example>", "DIGEST_FROM: not a valid domain"),
        ("DIGEST_FROM", "a@b.example, c@d.example", "DIGEST_FROM: not an email address"),
    ],
)  # fmt: skip
def test_hostile_config_values_are_refused_at_load(env: dict[str, str], key: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(expected)):
        settings_from({**env, key: value})
    result = run_cli(["send", "--dry-run"], {**env, key: value})
    assert result.exit_code == 2 and result.output.startswith(f"Error: {expected}")
    assert len(result.output.strip().splitlines()) == 1


def test_non_ascii_domains_in_the_config_are_sent_in_idna_form(
    smtp_env: dict[str, str], smtp_server: SmtpServer
) -> None:
    environ = {
        **smtp_env,
        "DIGEST_FROM": "Bücher <news@b\u00fccher.example>",
        "DIGEST_UNSUBSCRIBE_MAILTO": "mailto:leave@b\u00fccher.example",
        "DIGEST_PUBLIC_URL": "https://b\u00fccher.example/digest/",
    }
    assert run_cli(["subscribers", "add", "ada@example.com"], environ).exit_code == 0

    result = run_cli(["send"], environ)

    assert result.exit_code == 0, result.output
    (received,) = smtp_server.received
    assert received.mail_from == "news@xn--bcher-kva.example"
    lines = header_lines(received.data)
    assert b"From: =?utf-8?b?QsO8Y2hlcg==?= <news@xn--bcher-kva.example>" in lines
    unsubscribe = next(line for line in lines if line.startswith(b"List-Unsubscribe:"))
    assert re.fullmatch(
        rb"List-Unsubscribe: <https://xn--bcher-kva\.example/digest/unsubscribe\?token=[^>]+>,"
        rb"\r\n <mailto:leave@xn--bcher-kva\.example\?subject=unsubscribe>",
        unsubscribe,
    )
    assert re.search(rb"Message-ID: <digest\.[0-9a-f]+@xn--bcher-kva\.example>", received.data)


@pytest.mark.parametrize(
    "template",
    [
        "{{ range(10**9)|list }}",
        "{{ 'x' * 10**9 }}",
        "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
        "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
        "{{ 'x'|center(1000000000) }}",
        "{{ '{:>999999999}'.format(1) }}",
        "{{ 2 ** 100000000 }}",
        "{{ newest.title",
    ],
)
def test_a_runaway_subject_template_is_one_line_and_exit_2(env: dict[str, str], template: str) -> None:
    result = run_cli(["send", "--dry-run"], {**env, "DIGEST_SUBJECT": template})

    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: DIGEST_SUBJECT: ") and len(result.output.strip().splitlines()) == 1


def test_a_long_subject_is_capped(env: dict[str, str]) -> None:
    result = run_cli(["send", "--dry-run"], {**env, "DIGEST_SUBJECT": "{{ 'word ' * 500 }}"})
    assert result.exit_code == 0, result.output
    subject = next(line for line in result.output.splitlines() if "word word" in line)
    assert subject.count("word") < 40


FORMULA_NAMES = ["=HYPERLINK(\"https://evil.example\",\"x\")", "+1+2", "-3", "@SUM(A1)", "'=quoted", "''+twice",
                 "O'Brien", "plain"]  # fmt: skip


def test_export_neutralises_formulas_and_import_of_it_gives_the_text_back(env: dict[str, str], tmp_path: Path) -> None:
    addresses = [f"reader{n}@example.com" for n in range(len(FORMULA_NAMES))] + ["-dash@example.com"]
    for address, name in zip(addresses, [*FORMULA_NAMES, "=cmd|' /C calc'!A0"], strict=True):
        assert run_cli(["subscribers", "add", "--name", name, "--", address], env).exit_code == 0
    export = tmp_path / "out.csv"
    assert run_cli(["subscribers", "export", str(export)], env).exit_code == 0

    import csv

    with export.open(encoding="utf-8", newline="") as stream:
        cells = [cell for row in csv.reader(stream) for cell in row]
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert '\'=HYPERLINK("https://evil.example","x")' in cells and "'-dash@example.com" in cells
    assert "''=quoted" in cells and "'''+twice" in cells and "O'Brien" in cells

    fresh = {**env, "DIGEST_DB": str(tmp_path / "fresh.db")}
    assert run_cli(["subscribers", "import", str(export)], fresh).exit_code == 0
    again = tmp_path / "again.csv"
    assert run_cli(["subscribers", "export", str(again)], fresh).exit_code == 0

    def people(path: Path) -> list[tuple[str, str]]:
        with path.open(encoding="utf-8", newline="") as stream:
            return sorted((row["email"], row["name"]) for row in csv.DictReader(stream))

    assert people(again) == people(export)
    from digest import store

    db = store.open_db(Path(fresh["DIGEST_DB"]))
    try:
        names = {row["email"]: row["name"] for row in db.query("SELECT email, name FROM subscribers")}
    finally:
        db.close()
    assert names["-dash@example.com"] == "=cmd|' /C calc'!A0"
    assert [names[a] for a in addresses[:-1]] == FORMULA_NAMES


def test_a_headerless_csv_whose_first_row_has_no_name_keeps_later_names(env: dict[str, str], tmp_path: Path) -> None:
    source = tmp_path / "bare.csv"
    source.write_text("first@example.com\nsecond@example.com,Second Person\n", encoding="utf-8")

    assert run_cli(["subscribers", "import", str(source)], env).exit_code == 0

    from digest import store

    db = store.open_db(Path(env["DIGEST_DB"]))
    try:
        names = {row["email"]: row["name"] for row in db.query("SELECT email, name FROM subscribers")}
    finally:
        db.close()
    assert names == {"first@example.com": None, "second@example.com": "Second Person"}


# --- SMTP hints that fit the cause -------------------------------------------------------


@pytest.fixture
def tls_context(tmp_path: Path) -> ssl.SSLContext:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-subj", "/CN=127.0.0.1", "-days", "1"], check=True, capture_output=True)  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    return context


def test_a_530_asking_for_starttls_suggests_smtp_security_starttls(
    env: dict[str, str], tls_context: ssl.SSLContext
) -> None:
    server = start_smtp(tls_context=tls_context, require_starttls=True)
    try:
        environ = {**env, "SMTP_PORT": str(server.port), "SMTP_SECURITY": "none"}
        assert run_cli(["subscribers", "add", "ada@example.com"], environ).exit_code == 0
        result = run_cli(["send"], environ)
    finally:
        server.controller.stop()
    assert result.exit_code == 1
    assert "530" in result.output and "set SMTP_SECURITY=starttls" in result.output, result.output
    assert server.received == []


def test_a_username_without_auth_on_offer_says_so(smtp_env: dict[str, str]) -> None:
    environ = {**smtp_env, "SMTP_USERNAME": "news", "SMTP_PASSWORD": "pw-not-shown", "SMTP_SECURITY": "none"}
    assert run_cli(["subscribers", "add", "ada@example.com"], environ).exit_code == 0

    result = run_cli(["send"], environ)

    assert result.exit_code == 1
    assert "offers no AUTH, but SMTP_USERNAME is set" in result.output, result.output
    assert "pw-not-shown" not in result.output


def test_no_starttls_on_a_local_relay_port_suggests_smtp_security_none(smtp_env: dict[str, str]) -> None:
    from digest.smtp import starttls_hint

    assert run_cli(["subscribers", "add", "ada@example.com"], smtp_env).exit_code == 0
    result = run_cli(["send"], {**smtp_env, "SMTP_SECURITY": "starttls"})
    assert "does not offer STARTTLS" in result.output and result.exit_code == 1, result.output
    assert starttls_hint(25) == starttls_hint(1025) == "a local relay often has no TLS: set SMTP_SECURITY=none"
    assert "SMTP_SECURITY=ssl" in starttls_hint(587)


# --- a busy, damaged or full database ------------------------------------------------------


def test_subscribers_add_waits_for_a_database_busy_with_another_writer(env: dict[str, str]) -> None:
    import sqlite3
    import threading

    assert run_cli(["subscribers", "add", "first@example.com"], env).exit_code == 0
    other = sqlite3.connect(env["DIGEST_DB"], isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock ...
    other.execute("INSERT INTO state (key, value) VALUES ('writer', 'busy')")
    holding = threading.Timer(1.0, lambda: other.execute("COMMIT"))  # ... for a second
    holding.start()
    try:
        result = run_cli(["subscribers", "add", "second@example.com"], env)
    finally:
        holding.join()
        other.close()
    assert result.exit_code == 0, result.output
    assert "Added second@example.com" in result.output


def test_a_damaged_database_is_one_line_that_says_running_again_will_not_fix_it(
    env: dict[str, str], tmp_path: Path
) -> None:
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"this is not SQLite at all " * 200)
    for command in (["status"], ["send", "--dry-run"], ["subscribers", "add", "ada@example.com"]):
        result = run_cli(command, {**env, "DIGEST_DB": str(damaged)})
        assert result.exit_code == 1, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "damaged; running again will not fix it" in lines[0], result.output


def test_sqlite_errors_get_the_hint_for_their_cause() -> None:
    import sqlite3

    from digest.store import sqlite_hint

    assert "disk is full" in sqlite_hint(sqlite3.OperationalError("database or disk is full"))
    assert "another process" in sqlite_hint(sqlite3.OperationalError("database is locked"))
    assert "will not fix" in sqlite_hint(sqlite3.DatabaseError("database disk image is malformed"))


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_full_disk_for_the_lock_file_or_the_preview_folder_is_one_line(env: dict[str, str], tmp_path: Path) -> None:
    db = Path(env["DIGEST_DB"])
    db.parent.mkdir(parents=True, exist_ok=True)
    (db.parent / (db.name + ".lock")).symlink_to("/dev/full")  # every write: ENOSPC
    result = run_cli(["send"], env)
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [result.output.strip()]
    assert result.output.startswith("Error: cannot write lock file ")  # /dev/full refuses even the truncate

    preview = tmp_path / "preview"
    preview.mkdir()
    (preview / "digest.html").symlink_to("/dev/full")
    result = run_cli(["send", "--dry-run", "--output", str(preview)], {**env, "DIGEST_DB": str(tmp_path / "p.db")})
    assert result.exit_code == 2, result.output
    assert "--output: cannot write" in result.output and "the disk is full" in result.output


def test_an_smtp_reply_s_terminal_escapes_are_shown_never_obeyed(env: dict[str, str]) -> None:
    class Refusing(RecordingHandler):
        async def handle_RCPT(
            self, server: object, session: object, envelope: Any, address: str, options: object
        ) -> str:
            if address.startswith("refused"):
                return "550 5.1.1 \x1b]0;owned\x07\x1b[2Jno such user"
            envelope.rcpt_tos.append(address)
            return "250 OK"

    with running_smtp(Refusing()) as server:
        environ = {**env, "SMTP_PORT": str(server.port)}
        for address in ("refused@example.com", "reader@example.com"):
            assert run_cli(["subscribers", "add", address], environ).exit_code == 0
        sent = run_cli(["send"], environ)
        status = run_cli(["status"], environ)

    assert server.handler.recipients() == ["reader@example.com"]
    (stored,) = (
        sqlite3.connect(env["DIGEST_DB"])
        .execute("SELECT last_error FROM deliveries WHERE status = 'failed'")
        .fetchone()
    )
    assert "\\x1b]0;owned\\x07\\x1b[2Jno such user" in stored
    for text in (sent.output, status.output, stored):
        assert not {"\x1b", "\x07"} & set(text)
