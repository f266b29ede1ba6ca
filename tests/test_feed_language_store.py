"""A feed's subtitle and languages survive the database: check, then the digest shows them."""

from __future__ import annotations

from pathlib import Path

from lxml import html as lxml_html

from digest import store
from helpers import FIXTURES, add_subscribers, run_cli


def test_subtitle_and_languages_reach_the_sent_digest_through_the_store(env: dict[str, str], tmp_path: Path) -> None:
    environ = {**env, "DIGEST_FEED_URL": str(FIXTURES / "render" / "rtl-feed-language.rss"), "DIGEST_FIRST_RUN": "all"}
    add_subscribers(environ, "reader@example.com")
    assert run_cli(["check"], environ).exit_code == 0
    out = tmp_path / "preview"
    result = run_cli(["send", "--dry-run", "--output", str(out)], environ)
    assert result.exit_code == 0, result.output

    document = lxml_html.document_fromstring((out / "digest.html").read_text(encoding="utf-8"))
    assert document.get("lang") == "fa-IR"
    assert document.find_class("dg-masthead-tagline")[0].text_content() == "نوشته‌هایی درباره‌ی ساختن وب‌سایت"
    cards = {c.find_class("dg-entry-title")[0].text_content().strip(): c for c in document.find_class("dg-entry")}
    assert (cards["ساختن سایت ایستا"].get("lang"), cards["ساختن سایت ایستا"].get("dir")) == ("fa-IR", "rtl")
    assert (cards["A guest post, in English"].get("lang"), cards["A guest post, in English"].get("dir")) == ("en", None)


def test_an_older_database_gains_the_language_columns(tmp_path: Path) -> None:
    from sqlite_utils import Database

    from digest.store import schema

    path = tmp_path / "old.db"
    before = schema.MIGRATIONS.index(schema._migration_languages)
    old = Database(path)  # the database as the release before the languages migration left it
    for number, migration in enumerate(schema.MIGRATIONS[:before], start=1):
        migration(old)
        old.execute(f"PRAGMA user_version = {number}")
    old.close()
    db = store.open_db(path)
    try:
        assert {"subtitle", "language"} <= set(db["feeds"].columns_dict)
        assert "language" in db["entries"].columns_dict
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(schema.MIGRATIONS)
    finally:
        db.close()
