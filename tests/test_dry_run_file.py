"""Dry runs and test sends on a real SQLite file with history: nothing changes, everything is seen.

A dry run works on the real file inside a transaction that is never committed
(store/dryrun.py), so these tests build a database the way digest does (a real
send, more subscribers, a feed that grew) and compare the file's sha256 and the
folder's listing before and after, then check that the real send that follows
sends exactly what the dry run announced.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from digest import store
from helpers import FeedHost, FeedResource, SmtpServer, add_subscribers, run_cli


def item(n: int) -> str:
    return (
        f"<item><title>Post {n}</title><link>https://blog.example/{n}</link><guid>https://blog.example/{n}</guid>"
        f"<pubDate>Mon, 0{n} Nov 2026 08:00:00 +0000</pubDate><description>Body of post {n}.</description></item>"
    )


def rss(*numbers: int) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Field Notes</title>'
        "<link>https://blog.example/</link><description>d</description>"
        + "".join(item(n) for n in numbers)
        + "</channel></rss>"
    ).encode()


def fingerprint(db: Path) -> tuple[str, list[str]]:
    return hashlib.sha256(db.read_bytes()).hexdigest(), sorted(p.name for p in db.parent.iterdir())


@pytest.fixture
def history(smtp_env: dict[str, str], smtp_server: SmtpServer, feed_host: FeedHost) -> dict[str, str]:
    """A database after one real send (a digest, its deliveries), then a new post and a new subscriber."""
    feed_host.resources["/feed.xml"] = FeedResource(body=rss(1, 2))
    environ = {**smtp_env, "DIGEST_FEED_URL": feed_host.url("/feed.xml"), "DIGEST_FIRST_RUN": "all"}
    add_subscribers(environ, "ada@example.com", "grace@example.net")
    first = run_cli(["send"], environ)
    assert first.exit_code == 0, first.output
    assert len(smtp_server.received) == 2
    smtp_server.received.clear()
    feed_host.resources["/feed.xml"] = FeedResource(body=rss(1, 2, 3))
    add_subscribers(environ, "alan@example.org")
    return environ


def test_a_dry_run_creates_a_digest_in_memory_only_and_send_then_sends_it(
    history: dict[str, str], smtp_server: SmtpServer, tmp_path: Path
) -> None:
    db = Path(history["DIGEST_DB"])
    before = fingerprint(db)

    dry = run_cli(["send", "--dry-run", "--json", "--output", str(tmp_path / "preview")], history)

    assert dry.exit_code == 0, dry.output
    assert fingerprint(db) == before  # the file's bytes, and no -wal or -journal left beside it
    assert smtp_server.received == []
    planned = json.loads(dry.output)["digest"]
    assert planned["resumes"] is None
    assert planned["entries"] == ["Post 3"]
    assert planned["recipients"] == 3

    real = run_cli(["send", "--json"], history)

    assert real.exit_code == 0, real.output
    (sent,) = json.loads(real.output)["digests"]
    assert (sent["subject"], sent["entries"], sent["sent"]) == (planned["subject"], 1, planned["recipients"])
    assert sorted(r.rcpt_tos[0] for r in smtp_server.received) == [
        "ada@example.com",
        "alan@example.org",
        "grace@example.net",
    ]
    preview_html = (tmp_path / "preview" / "digest.html").read_text(encoding="utf-8")
    ada = next(r for r in smtp_server.received if r.rcpt_tos == ["ada@example.com"])
    assert ada.part("html").replace("\r\n", "\n").strip() == preview_html.strip()  # the same copy, to the byte


def test_a_test_send_changes_no_byte_and_sends_the_digest_send_then_sends(
    history: dict[str, str], smtp_server: SmtpServer
) -> None:
    db = Path(history["DIGEST_DB"])
    before = fingerprint(db)

    test = run_cli(["send", "--to", "tester@example.com", "--json"], history)

    assert test.exit_code == 0, test.output
    assert fingerprint(db) == before
    tried = json.loads(test.output)["test_send"]
    assert (tried["to"], tried["digest"], tried["entries"]) == ("tester@example.com", None, 1)
    (received,) = smtp_server.received
    smtp_server.received.clear()

    real = run_cli(["send", "--json"], history)

    (sent,) = json.loads(real.output)["digests"]
    assert sent["subject"] == tried["subject"] == received.message["Subject"]
    assert sent["sent"] == 3
    assert "Post 3" in received.part("plain")


def test_a_dry_run_cannot_commit_even_when_asked(history: dict[str, str]) -> None:
    from digest import store

    # The guarantee behind the two tests above, on the connection itself, on the real file.
    db_path = Path(history["DIGEST_DB"])
    before = fingerprint(db_path)
    db = store.open_snapshot(db_path)
    try:
        real_count = store.count_subscribers(db)
        store.add_subscriber(db, "ada.lovelace@example.com")
        with pytest.raises(sqlite3.DatabaseError, match="not authorized"):
            db.conn.cursor().execute("COMMIT")
        assert store.count_subscribers(db) == real_count + 1
    finally:
        db.close()
    assert fingerprint(db_path) == before
    plain = sqlite3.connect(db_path)
    try:
        assert plain.execute("SELECT count(*) FROM subscribers").fetchone()[0] == real_count
    finally:
        plain.close()


def _lock_is_free(db_path: Path) -> bool:
    other = sqlite3.connect(db_path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        other.close()


def test_reads_take_no_lock_and_a_write_inside_a_query_savepoint_is_rolled_back(history: dict[str, str]) -> None:
    from digest import store

    db_path = Path(history["DIGEST_DB"])
    before = fingerprint(db_path)
    db = store.open_snapshot(db_path)
    try:
        assert next(iter(db.query("SELECT count(*) AS n FROM subscribers")))["n"] == 3  # sqlite-utils: a savepoint
        assert _lock_is_free(db_path)
        written = list(db.query("INSERT INTO state (key, value) VALUES ('k', 'v') RETURNING key"))  # the same path
        assert written == [{"key": "k"}]
        assert not _lock_is_free(db_path)  # the write opened the dry run's transaction

        def two_writes_the_second_failing() -> None:
            with db.atomic():
                db.execute("INSERT INTO state (key, value) VALUES ('k2', 'v2')")
                db.execute("INSERT INTO state (key, value) VALUES ('k', 'again')")

        with pytest.raises(sqlite3.IntegrityError):
            two_writes_the_second_failing()
        assert [row["key"] for row in db.query("SELECT key FROM state ORDER BY key")] == ["k"]  # k2 undone
    finally:
        db.close()
    assert fingerprint(db_path) == before
    assert _lock_is_free(db_path)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def wal_writer(db_path: Path) -> sqlite3.Connection:
    """A writer that keeps committed frames in -wal: no automatic checkpoint, still open."""
    writer = sqlite3.connect(db_path, isolation_level=None)
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("UPDATE subscribers SET email = email")
    writer.execute(
        "INSERT INTO subscribers (email, status, token, created, updated)"
        " VALUES ('wal@example.com', 'active', 'wal-token', '2026-12-03T00:00:00Z', '2026-12-03T00:00:00Z')"
    )
    return writer


def files_beside(db_path: Path) -> dict[str, str]:
    return {p.name: sha(p) for p in db_path.parent.iterdir() if p.name.startswith(db_path.name)}


def test_a_dry_run_leaves_a_live_writers_wal_frames_in_place(history: dict[str, str], tmp_path: Path) -> None:
    db_path = Path(history["DIGEST_DB"])
    writer = wal_writer(db_path)
    try:
        wal = db_path.with_name(db_path.name + "-wal")
        assert wal.stat().st_size > 0
        main_before, wal_before = sha(db_path), sha(wal)

        dry = run_cli(["send", "--dry-run", "--json", "--output", str(tmp_path / "preview")], history)

        assert dry.exit_code == 0, dry.output
        assert json.loads(dry.output)["digest"]["recipients"] == 4  # the writer's committed row is seen
        assert (sha(db_path), wal.exists(), sha(wal)) == (main_before, True, wal_before)
    finally:
        writer.close()


def test_a_dry_run_leaves_a_killed_writers_wal_frames_in_place(history: dict[str, str], tmp_path: Path) -> None:
    db_path = Path(history["DIGEST_DB"])
    copy = tmp_path / "killed"
    copy.mkdir()
    writer = wal_writer(db_path)
    try:
        for suffix in ("", "-wal", "-shm"):  # the three files as a kill -9 would leave them
            (copy / f"{db_path.name}{suffix}").write_bytes(db_path.with_name(db_path.name + suffix).read_bytes())
    finally:
        writer.close()
    copied = copy / db_path.name
    before = files_beside(copied)
    assert (copy / f"{db_path.name}-wal").stat().st_size > 0

    dry = run_cli(
        ["send", "--dry-run", "--json", "--output", str(tmp_path / "preview")], {**history, "DIGEST_DB": str(copied)}
    )

    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.output)["digest"]["recipients"] == 4
    after = files_beside(copied)
    assert {k: v for k, v in after.items() if not k.endswith("-shm")} == {
        k: v for k, v in before.items() if not k.endswith("-shm")
    }  # the main file and -wal, byte for byte; -shm is only the readers' index
    assert set(after) == set(before)


def test_send_status_send_on_a_real_file(history: dict[str, str], smtp_server: SmtpServer) -> None:
    assert run_cli(["send"], history).exit_code == 0
    assert len(smtp_server.received) == 3

    status = run_cli(["status", "--json"], history)

    assert status.exit_code == 0, status.output
    digests = json.loads(status.output)["digests"]
    assert [(d["sent"], d["status"]) for d in digests[:2]] == [(3, "sent"), (2, "sent")]

    again = run_cli(["send"], history)

    assert again.exit_code == 0, again.output
    assert "Nothing new to send." in again.output
    assert len(smtp_server.received) == 3


def test_a_dry_run_takes_the_write_lock_only_after_every_feed_is_fetched(
    history: dict[str, str], feed_host: FeedHost, tmp_path: Path
) -> None:
    # The second feed stalls until released: while it does, the first feed (which has a new
    # post, so the dry run will write) has been fetched, and the database must still be free.
    import threading

    from digest import preview
    from digest.config import load_settings
    from digest.wiring import wire
    from helpers import wait_until

    feed_host.resources["/slow.xml"] = FeedResource(body=rss(4), stall="headers")
    environ = {**history, "DIGEST_FEED_URL": f"{history['DIGEST_FEED_URL']} {feed_host.url('/slow.xml')}",
               "DIGEST_FETCH_TIMEOUT": "30s"}  # fmt: skip
    wiring = wire(load_settings(None, environ))
    shown: list[preview.Preview] = []
    worker = threading.Thread(target=lambda: shown.append(preview.preview(wiring, tmp_path / "out")))
    worker.start()
    try:
        wait_until(lambda: any(path == "/slow.xml" for path, _ in feed_host.requests), "the slow feed requested")
        with sqlite3.connect(history["DIGEST_DB"], timeout=0) as other:
            other.execute("BEGIN IMMEDIATE")  # "database is locked" if the dry run held the lock
            other.execute("ROLLBACK")
    finally:
        feed_host.released.set()
        worker.join(60)
    plan = shown[0].plan if shown else None
    assert plan is not None and [entry.title for entry in plan.entries] == ["Post 3"]


def test_a_dry_run_works_on_the_file_itself_beside_a_live_writers_wal_frames(history: dict[str, str]) -> None:
    db_path = Path(history["DIGEST_DB"])
    writer = wal_writer(db_path)
    try:
        snapshot = store.open_snapshot(db_path)
        try:
            files = [row[2] for row in snapshot.execute("PRAGMA database_list") if row[1] == "main"]
            count = snapshot.execute("SELECT COUNT(*) FROM subscribers").fetchone()[0]
        finally:
            snapshot.close()
    finally:
        writer.close()
    assert files == [str(db_path.resolve())]  # not an in-memory copy: memory does not grow with the file
    assert count == 4  # the writer's committed row is seen


def test_a_writer_that_commits_and_closes_during_a_dry_run_is_not_checkpointed_by_it(
    history: dict[str, str],
) -> None:
    db_path = Path(history["DIGEST_DB"])
    wal = db_path.with_name(db_path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # nothing pending when the dry run opens the file
    main_before = sha(db_path)
    snapshot = store.open_snapshot(db_path)
    try:
        snapshot.execute("SELECT COUNT(*) FROM subscribers").fetchone()
        wal_writer(db_path).close()  # a daemon's commit, then its close, while the dry run still runs
        wal_after_writer = sha(wal)
    finally:
        snapshot.close()

    assert (sha(db_path), sha(wal)) == (main_before, wal_after_writer)  # the writer's frames stay in -wal
    reader = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        assert reader.execute("SELECT COUNT(*) FROM subscribers WHERE email = 'wal@example.com'").fetchone()[0] == 1
    finally:
        reader.close()
