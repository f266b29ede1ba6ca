"""Read bounce mail from an IMAP mailbox (DIGEST_BOUNCE_IMAP_*), for `digest bounces process --imap`.

TLS is verified by default (implicit TLS on 993; ``starttls``; ``none`` only
for a server on the same machine). A classified message is moved to the
``processed`` folder (MOVE, or COPY then flagged \\Deleted and expunged by
UID, so nothing else is expunged); an unrecognised one is left as it was,
not even marked seen (BODY.PEEK). The password is never logged.
"""

from __future__ import annotations

import imaplib
import logging
import ssl

from sqlite_utils import Database

from digest.bounceprocess import PROCESSED_FOLDER, ProcessReport, process_bytes
from digest.config import Settings
from digest.errors import ConfigError, DigestError, shown

log = logging.getLogger(__name__)


def _connect(settings: Settings) -> imaplib.IMAP4:
    host, port = settings.bounce_imap_host, settings.bounce_imap_port
    assert host is not None
    context = ssl.create_default_context(
        cafile=str(settings.bounce_imap_ca_file) if settings.bounce_imap_ca_file else None
    )
    if settings.bounce_imap_security == "ssl":
        return imaplib.IMAP4_SSL(host, port, ssl_context=context, timeout=30)
    client = imaplib.IMAP4(host, port, timeout=30)
    if settings.bounce_imap_security == "starttls":
        client.starttls(ssl_context=context)
    return client


def process_imap(db: Database, settings: Settings, *, dry_run: bool = False) -> ProcessReport:
    if not settings.bounce_imap_host or not settings.bounce_imap_user:
        raise ConfigError("DIGEST_BOUNCE_IMAP_HOST: --imap needs DIGEST_BOUNCE_IMAP_HOST and DIGEST_BOUNCE_IMAP_USER")
    where = f"IMAP {settings.bounce_imap_host}:{settings.bounce_imap_port}"
    report = ProcessReport()
    try:
        client = _connect(settings)
    except (OSError, imaplib.IMAP4.error) as exc:
        raise DigestError(f"{where}: cannot connect: {shown(exc)}") from None  # the server's words, escaped
    try:
        try:
            client.login(settings.bounce_imap_user, settings.bounce_imap_password or "")
        except imaplib.IMAP4.error:
            hint = "check DIGEST_BOUNCE_IMAP_USER and DIGEST_BOUNCE_IMAP_PASSWORD"
            raise DigestError(f"{where}: login failed for {settings.bounce_imap_user}", hint=hint) from None
        folder = settings.bounce_imap_folder
        typ, _ = client.select(f'"{folder}"')
        if typ != "OK":
            raise DigestError(f"{where}: no folder {folder!r}", hint="check DIGEST_BOUNCE_IMAP_FOLDER")
        _, found = client.uid("SEARCH", "UNDELETED")
        uids = found[0].split() if found and found[0] else []
        done: list[bytes] = []
        for uid in uids:
            _, parts = client.uid("FETCH", uid, "(BODY.PEEK[])")
            data = next((p[1] for p in parts if isinstance(p, tuple)), None)
            if data is None:
                continue
            outcome = process_bytes(db, settings, data, f"imap:{uid.decode()}", dry_run=dry_run)
            report.outcomes.append(outcome)
            if outcome.verdict != "unrecognised":
                done.append(uid)
        if done and not dry_run:
            _move(client, b",".join(done).decode(), PROCESSED_FOLDER)
        client.logout()
    except (OSError, imaplib.IMAP4.error) as exc:
        raise DigestError(f"{where}: {shown(exc)}") from None
    finally:
        if client.state != "LOGOUT":
            client.shutdown()
    return report


def _move(client: imaplib.IMAP4, uids: str, folder: str) -> None:
    client.create(folder)  # "already exists" is fine
    _, caps = client.capability()  # after login: servers announce more than in the greeting
    capabilities = set(caps[0].decode().upper().split()) if caps and caps[0] else set()
    if "MOVE" in capabilities and "MOVE" in imaplib.Commands:
        typ, detail = client.uid("MOVE", uids, folder)
        if typ == "OK":
            return
    typ, detail = client.uid("COPY", uids, folder)
    if typ != "OK":
        raise DigestError(f"IMAP: cannot copy processed mail to {folder!r}: {shown(detail)}")
    client.uid("STORE", uids, "+FLAGS.SILENT", r"(\Deleted)")
    if "UIDPLUS" in capabilities:
        client.uid("EXPUNGE", uids)  # only these: never another client's deleted mail
