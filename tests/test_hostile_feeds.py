"""Hostile feeds: text Python's URL parser, feedparser or lxml would raise on, and containment of the unforeseen.

Every case goes through the real pipeline (feedparser, the SQLite file, the
renderer, the CLI): a feed digest cannot fully read is an error on that
feed's row or a warning, never a traceback, and never stops the other feeds
or every later digest. The last tests run a small seeded fuzzer over the
same stages.
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import feedparser
import pytest
from lxml.html import HtmlElement

import digest.feeds
from digest import codeblocks, store
from digest.errors import FeedError
from digest.feeds import parse_feed
from digest.fetch import FetchResult
from digest.render import render_digest
from helpers import answering, run_cli, settings_from, stored_entries_of

# Text urllib.parse raises ValueError on (when split, or when .hostname/.port is read).
UNREADABLE_URLS = [
    "http://[::1/unclosed",
    "http://blog.example:99999999/post",
    "http://[::ffff:999.1.1.1]/post",
    "http://blog.example:port/post",
]


def atom(path: Path, *entries: str, feed_extra: str = "") -> Path:
    path.write_bytes(
        (
            '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            f'<title>Hostile Notes</title><id>urn:hostile</id><link href="https://blog.example/"/>{feed_extra}'
            f"<updated>2026-11-20T08:00:00Z</updated>{''.join(entries)}</feed>"
        ).encode("utf-8", "surrogatepass")
    )
    return path


def entry(number: int, *, title: str = "", link: str = "", content: str = "", extra: str = "") -> str:
    return (
        f"<entry><title>{title or f'Post {number}'}</title><id>urn:hostile:{number}</id>"
        f'<link href="{link or f"https://blog.example/{number}"}"/>{extra}'
        f"<updated>2026-11-{20 - number:02d}T08:00:00Z</updated>"
        f'<content type="html"><![CDATA[{content or f"<p>Body {number}.</p>"}]]></content></entry>'
    )


def dry_run(environ: dict[str, str], out: Path) -> tuple[int, str, str]:
    """``send --dry-run`` as the user runs it: exit code, everything printed, the HTML preview."""
    result = run_cli(["send", "--dry-run", "--output", str(out)], {**environ, "DIGEST_FIRST_RUN": "all"})
    assert "Traceback" not in result.output
    html = (out / "digest.html").read_text(encoding="utf-8") if (out / "digest.html").exists() else ""
    return result.exit_code, result.output, html


@pytest.mark.parametrize("bad", UNREADABLE_URLS)
def test_unreadable_urls_in_a_post_are_dropped_and_the_post_still_goes_out(
    env: dict[str, str], tmp_path: Path, bad: str
) -> None:
    feed = atom(
        tmp_path / "feed.atom",
        entry(1, link=bad, content=f'<p>See <a href="{bad}">this page</a>.</p><img src="{bad}">'),
        entry(2, content=f'<p>Base.</p><iframe src="{bad}"></iframe>', extra=f'<link rel="enclosure" href="{bad}"/>'),
        entry(3, content=f'<div xml:base="{bad}"><a href="relative">words kept</a></div>'),
        feed_extra=f'<link rel="self" href="{bad}"/>',
    )

    code, output, html = dry_run({**env, "DIGEST_FEED_URL": str(feed)}, tmp_path / "out")

    assert code == 0, output
    for title in ("Post 1", "Post 2", "Post 3"):
        assert title in html
    assert "this page" in html and "words kept" in html  # the words stay, the link that cannot be followed goes
    assert bad not in html and bad.replace("&", "&amp;") not in html


@pytest.mark.parametrize("bad", UNREADABLE_URLS)
def test_an_unreadable_xml_base_is_ignored(bad: str) -> None:
    body = f'<feed xmlns="http://www.w3.org/2005/Atom" xml:base="{bad}">' + entry(1, content='<a href="/x">x</a>')
    parsed = parse_feed(FetchResult(url="https://blog.example/feed", status=200, body=(body + "</feed>").encode()))

    assert [e.title for e in parsed.entries] == ["Post 1"]
    assert 'href="https://blog.example/x"' in parsed.entries[0].content_html  # the feed's own URL is the base


@pytest.mark.parametrize(
    "reference", ["&#xD800;", "&#55296;", "&#xDFFF;", "&#xd83d;&#xde00;", "&#x110000;", "&#99999999999999;"]
)
def test_references_to_no_character_in_an_ill_formed_feed_are_read_as_replacement_characters(
    env: dict[str, str], tmp_path: Path, reference: str
) -> None:
    # An unclosed <p> makes the feed ill-formed: feedparser's loose parser reads it, and raised on these.
    feed = atom(
        tmp_path / "feed.atom",
        entry(1, title=f"Broken {reference} title", content="<p>one"),
        entry(2),
        feed_extra="<p>",
    )

    result = run_cli(["check"], {**env, "DIGEST_FEED_URL": str(feed), "DIGEST_FIRST_RUN": "all"})

    assert result.exit_code == 0, result.output
    assert "Broken \ufffd" in result.stdout
    assert "Post 2" in result.stdout


def test_control_characters_from_bytes_and_references_never_reach_the_html(env: dict[str, str], tmp_path: Path) -> None:
    controls = "".join(chr(c) for c in range(32) if chr(c) not in "\t\n\r")
    feed = atom(
        tmp_path / "feed.atom",
        entry(
            1,
            title="Bell\x07 and &#1; title",
            content=f'<pre><code class="language-python{controls[:3]}">x = 1{controls}</code></pre>'
            f'<p class="a\x01b" title="t\x02">para</p>',
        ),
        entry(2, title="Form &#12; feed"),
        feed_extra="<p>",  # ill-formed: the loose parser passes references like &#1; on as characters
    )

    code, output, html = dry_run({**env, "DIGEST_FEED_URL": str(feed)}, tmp_path / "out")

    assert code == 0, output
    text = (tmp_path / "out" / "digest.txt").read_text(encoding="utf-8")
    assert "Bell and title" in html and "para" in html and "x = 1" in text  # HTML has the code coloured
    assert not set(controls) & set(html + text)
    assert run_cli(["check"], {**env, "DIGEST_FEED_URL": str(feed), "DIGEST_FIRST_RUN": "all"}).exit_code == 0
    rows = sqlite3.connect(env["DIGEST_DB"]).execute("SELECT title, content_html FROM entries").fetchall()
    assert rows and not any(set(controls) & set(f"{title}{content}") for title, content in rows)


def test_an_enclosure_length_past_64_bits_is_unknown_not_a_crash(env: dict[str, str], tmp_path: Path) -> None:
    big = "9" * 30
    feed = atom(tmp_path / "feed.atom", entry(1, extra=f'<link rel="enclosure" href="a.mp3" length="{big}"/>'))

    result = run_cli(["check"], {**env, "DIGEST_FEED_URL": str(feed), "DIGEST_FIRST_RUN": "all"})

    assert result.exit_code == 0, result.output
    parsed = parse_feed(FetchResult(url=str(feed), status=200, body=feed.read_bytes()))
    assert [(e.url, e.length) for e in parsed.entries[0].enclosures] == [("https://blog.example/a.mp3", None)]


@pytest.mark.parametrize("key", ["DIGEST_FEED_URL", "DIGEST_PUBLIC_URL"])
@pytest.mark.parametrize("bad", [*UNREADABLE_URLS, "https:///no-host"])
def test_an_unreadable_url_in_the_configuration_is_one_line_and_exit_2(env: dict[str, str], key: str, bad: str) -> None:
    result = run_cli(["check"], {**env, key: bad})

    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [result.output.strip()]
    assert result.output.startswith(f"Error: {key}: ")


@pytest.mark.parametrize(
    "reply",
    [
        b"HTTP/1.1 500 \x1b]0;owned\x07\x1b[2J\r\nContent-Length: 0\r\n\r\n",  # the reason phrase
        b"\x1b[31mnot HTTP at all\x9b\r\n\r\n",  # a status line http.client cannot read
    ],
)
def test_a_server_s_bytes_in_an_error_are_shown_never_obeyed(env: dict[str, str], reply: bytes) -> None:
    with answering(reply) as port:
        result = run_cli(["check"], {**env, "DIGEST_FEED_URL": f"http://127.0.0.1:{port}/feed.xml"})

    assert result.exit_code == 1
    assert "\\x1b" in result.output  # shown as an escape, not sent to the terminal
    assert not {"\x1b", "\x07", "\x9b"} & set(result.output)
    (stored,) = sqlite3.connect(env["DIGEST_DB"]).execute("SELECT last_error FROM feeds").fetchone()
    assert "\\x1b" in stored and "\x1b" not in stored  # `digest status` and `feeds list` print it


def test_c1_controls_and_del_in_feed_text_are_dropped(env: dict[str, str], tmp_path: Path) -> None:
    # Well-formed XML 1.0 allows them as raw characters (feedparser reads &#x9b; as cp1252's "›");
    # \x9b alone opens an escape sequence on many terminals.
    feed = atom(tmp_path / "feed.atom", entry(1, title="Red\x9b31m \x7ftitle", content="<p>a\x85b</p>"))

    result = run_cli(["check"], {**env, "DIGEST_FEED_URL": str(feed), "DIGEST_FIRST_RUN": "all"})

    assert result.exit_code == 0, result.output
    (title, content) = sqlite3.connect(env["DIGEST_DB"]).execute("SELECT title, content_html FROM entries").fetchone()
    assert title in result.output and title.endswith("31m title")  # feedparser makes some C1 cp1252 ("›")
    assert not {chr(code) for code in range(0x7F, 0xA0)} & set(result.output + title + content)


# --- containment: what nobody foresaw fails one feed or one post, not the run ---------------


def two_feeds(tmp_path: Path) -> tuple[Path, Path]:
    good = atom(tmp_path / "good.atom", entry(1, title="Good one"), entry(2, title="Good two"))
    bad = tmp_path / "bad.atom"
    bad.write_text(good.read_text().replace("urn:hostile", "urn:other").replace("Good", "Doomed"), encoding="utf-8")
    return good, bad


def test_a_feed_digest_fails_to_parse_is_recorded_on_its_row_and_the_others_are_checked(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good, bad = two_feeds(tmp_path)
    real = feedparser.parse

    def parse(body: bytes, **kwargs: object) -> object:
        if b"Doomed" in body:
            raise AttributeError("'NoneType' object has no attribute 'lower'")  # as an internal bug would
        return real(body, **kwargs)

    monkeypatch.setattr(feedparser, "parse", parse)
    environ = {**env, "DIGEST_FEED_URL": f"{bad} {good}", "DIGEST_FIRST_RUN": "all"}

    result = run_cli(["check"], environ)

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "feedparser failed (AttributeError: 'NoneType' object has no attribute 'lower')" in result.output
    assert "Good one" in result.output and "Good two" in result.output
    rows = dict(sqlite3.connect(env["DIGEST_DB"]).execute("SELECT url, last_status FROM feeds").fetchall())
    assert rows == {str(bad): "error", str(good): "200"}


def test_an_unforeseen_failure_while_reading_or_recording_one_feed_is_that_feed_s_error(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good, bad = two_feeds(tmp_path)
    real_parse, real_record = digest.feeds.parse_feed, store.record_entries
    environ = {**env, "DIGEST_FEED_URL": f"{bad} {good}", "DIGEST_FIRST_RUN": "all"}

    def parse(result: FetchResult) -> object:
        if result.body and b"Doomed" in result.body:
            raise KeyError("title")
        return real_parse(result)

    monkeypatch.setattr(digest.feeds, "parse_feed", parse)
    first = run_cli(["check"], environ)
    assert first.exit_code == 1 and "Traceback" not in first.output
    assert f"{bad}: could not be read: KeyError: 'title'" in first.output
    assert "Good one" in first.output

    def record(db: object, feed_id: int, entries: object, policy: object) -> object:
        if feed_id == bad_id:
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        return real_record(db, feed_id, entries, policy)  # type: ignore[arg-type]

    conn = sqlite3.connect(env["DIGEST_DB"])
    bad_id = conn.execute("SELECT id FROM feeds WHERE url = ?", (str(bad),)).fetchone()[0]
    conn.close()
    monkeypatch.setattr(digest.feeds, "parse_feed", real_parse)
    monkeypatch.setattr(store, "record_entries", record)
    second = run_cli(["check"], environ)

    assert second.exit_code == 1 and "Traceback" not in second.output
    assert "could not be recorded: OverflowError" in second.output
    conn = sqlite3.connect(env["DIGEST_DB"])
    assert conn.execute("SELECT last_status FROM feeds WHERE id = ?", (bad_id,)).fetchone() == ("error",)
    assert conn.execute("SELECT count(*) FROM entries WHERE feed_id = ?", (bad_id,)).fetchone() == (0,)
    conn.close()


def test_an_item_digest_cannot_read_is_left_out_with_a_warning_and_tried_again(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed = atom(tmp_path / "feed.atom", entry(1, title="Doomed post"), entry(2, title="Fine post"))
    real = digest.feeds._entry

    def one_entry(raw: dict[str, object], raw_title: str, *args: object) -> object:
        if raw_title == "Doomed post":
            raise IndexError("list index out of range")
        return real(raw, raw_title, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(digest.feeds, "_entry", one_entry)
    environ = {**env, "DIGEST_FEED_URL": str(feed), "DIGEST_FIRST_RUN": "all"}
    result = run_cli(["check"], environ)

    assert result.exit_code == 0, result.output
    assert "Fine post" in result.output
    assert "item 1 'Doomed post': IndexError: list index out of range" in result.output
    monkeypatch.setattr(digest.feeds, "_entry", real)  # fixed: the item left out is new at the next check
    again = run_cli(["check"], environ)
    assert "Doomed post" in again.stdout and "Fine post" not in again.stdout


def test_a_feed_none_of_whose_items_can_be_read_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    feed = atom(tmp_path / "feed.atom", entry(1), entry(2))
    monkeypatch.setattr(digest.feeds, "_entry", lambda *args: 1 / 0)

    with pytest.raises(FeedError, match=r"no item could be read: item 1 'Post 1': ZeroDivisionError"):
        parse_feed(FetchResult(url=str(feed), status=200, body=feed.read_bytes()))


def test_a_post_digest_cannot_prepare_goes_out_as_its_title_and_link(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed = atom(
        tmp_path / "feed.atom",
        entry(1, title="Doomed post", content="<pre><code>doomed code</code></pre>"),
        entry(2, title="Fine post", content="<p>Fine body.</p>"),
    )
    real = codeblocks.style_code_blocks

    def style(root: HtmlElement, style_name: str) -> None:
        if "doomed code" in "".join(root.itertext()):
            raise RecursionError("maximum recursion depth exceeded")
        real(root, style_name)

    monkeypatch.setattr(codeblocks, "style_code_blocks", style)
    code, output, html = dry_run({**env, "DIGEST_FEED_URL": str(feed)}, tmp_path / "out")

    assert code == 0, output
    assert "post 'Doomed post' could not be prepared (RecursionError" in output
    assert "Doomed post" in html and "https://blog.example/1" in html and "doomed code" not in html
    assert "Fine body." in html


# --- a seeded fuzzer over the parse and render stages ------------------------------------

PIECES = [
    *UNREADABLE_URLS,
    "javascript:alert(1)",
    "&#xD800;",
    "&#1;",
    "\x0b",
    "\u202e",
    "&#x110000;",
    "]]>",
    "<![CDATA[",
    "&bogus;",
    "\ufeff",
    "<div>" * 300,
    "</pre>",
    '<pre><code class="language-">',
    '<img srcset=", ,">',
    "9" * 40,
    "-1",
    "",
]
SPOTS = ["title", "link", "content", "date", "length", "lang", "base"]


def fuzzed_feed(rng: random.Random) -> bytes:
    def piece() -> str:
        return "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 3)))

    spot = {name: piece() if rng.random() < 0.5 else None for name in SPOTS}
    items = "".join(
        f'<entry xml:lang="{spot["lang"] or "en"}"><title>{spot["title"] or "T"}{n}</title><id>urn:f:{n}</id>'
        f'<link href="{spot["link"] or f"https://blog.example/{n}"}"/>'
        f'<link rel="enclosure" href="m{n}.mp3" length="{spot["length"] or 10}"/>'
        f"<updated>{spot['date'] or '2026-11-20T08:00:00Z'}</updated>"
        f'<content type="html" xml:base="{spot["base"] or "https://blog.example/"}"><![CDATA[<p>{n}</p>'
        f'{spot["content"] or ""}<a href="{spot["link"] or "/x"}">l</a>]]></content></entry>'
        for n in range(3)
    )
    text = (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>F</title>'
        f'<id>urn:f</id><link href="https://blog.example/"/>{items}</feed>'
    )
    raw = bytearray(text.encode("utf-8", "surrogatepass"))
    for _ in range(rng.choice([0, 0, 1, 5])):  # and sometimes a few random bytes
        raw[rng.randrange(len(raw))] = rng.randrange(256)
    return bytes(raw)


@pytest.mark.parametrize("seed", range(4))
def test_fuzzed_feeds_parse_to_entries_or_a_feed_error_and_always_render(env: dict[str, str], seed: int) -> None:
    rng = random.Random(seed)
    settings = settings_from(env)
    for round_number in range(10):
        body = fuzzed_feed(rng)
        try:
            parsed = parse_feed(FetchResult(url="https://blog.example/feed", status=200, body=body))
        except FeedError:
            continue
        entries = stored_entries_of(parsed)
        html = render_digest(entries, settings, archive_url=None).html
        assert "</html>" in html, (seed, round_number, body)


@pytest.mark.parametrize("bad", [*UNREADABLE_URLS, "https:///no-host", "ftp://blog.example/feed.xml"])
def test_feeds_move_to_an_unreadable_url_is_refused_not_taken_for_a_path(
    env: dict[str, str], tmp_path: Path, bad: str
) -> None:
    feed = atom(tmp_path / "feed.atom", entry(1))
    environ = {**env, "DIGEST_FEED_URL": str(feed)}
    assert run_cli(["check"], environ).exit_code == 0

    moved = run_cli(["feeds", "move", str(feed), bad], environ)
    removed = run_cli(["feeds", "remove", bad], environ)

    assert moved.exit_code == removed.exit_code == 2
    assert moved.output.strip().splitlines()[-1].startswith("Error: ")
    assert bad in moved.output and "/tmp" not in moved.output.replace(str(feed), "")
    (url,) = sqlite3.connect(env["DIGEST_DB"]).execute("SELECT url FROM feeds").fetchone()
    assert url == str(feed)
