"""SQLite state via sqlite-utils: the only place that speaks SQL.

One module per concern, each re-exported here so callers write
``store.open_db(path)``, ``store.record_entries(...)``:

- connection.py  opening (migrated), write transactions
- dryrun.py      dry runs on the real file: a connection that never commits
- schema.py      the tables and their numbered migrations
- feeds.py       feeds, found again after a move
- entries.py     what a fetch found, and reading entries back
- digests.py     digests, created with their entries in one transaction
- archive.py     the public archive's reads (published digests) and the next digest's id
- deliveries.py  the per (digest, subscriber) send log and retry schedule
- subscribers.py the subscriber list
- imports.py     a CSV import's staging table and its one transaction
- bounces.py     bounces, complaints and the bounce score
- state.py       small facts (the daemon's last run, its heartbeat)
- times.py       how moments are written (ISO 8601, UTC)
"""

from digest.store.archive import archived_count, archived_digest, archived_digests, next_digest_id
from digest.store.bounces import (
    AppliedBounce,
    BouncePolicy,
    apply_event,
    digest_exists,
    digest_rates,
    list_bounces,
    reactivate,
)
from digest.store.connection import busy_timeout, open_db, opened, sqlite_hint, transaction, write_transaction
from digest.store.deliveries import (
    RETRY_SPACING,
    count_undelivered,
    delivery_counts,
    failed_deliveries,
    next_retry,
    record_delivery,
    undelivered_subscribers,
)
from digest.store.digests import (
    create_digest,
    digest_row,
    last_digest_activity,
    recent_digests,
    set_digest_status,
    unfinished_digests,
)
from digest.store.dryrun import open_snapshot
from digest.store.entries import Recorded, digest_entries, entries_by_id, pending_count, pending_entries, record_entries
from digest.store.feeds import (
    feed_row,
    feed_rows,
    feeds_overview,
    last_feed_check,
    move_feed,
    peek_feed_row,
    remove_feed,
    update_feed,
)
from digest.store.imports import ImportCounts, apply_import, drop_import, stage_rows, staged_line, start_import
from digest.store.state import get_state, set_state
from digest.store.subscribers import (
    AddResult,
    RemoveResult,
    add_subscriber,
    column_widths,
    count_subscribers,
    get_by_email,
    get_by_id,
    get_by_token,
    iter_subscribers,
    remove_subscriber,
    set_subscriber_status,
    status_counts,
    unsubscribe_token,
)
from digest.store.times import from_text, to_text, utcnow

__all__ = [
    "RETRY_SPACING",
    "AddResult",
    "AppliedBounce",
    "BouncePolicy",
    "ImportCounts",
    "Recorded",
    "RemoveResult",
    "add_subscriber",
    "apply_event",
    "apply_import",
    "archived_count",
    "archived_digest",
    "archived_digests",
    "busy_timeout",
    "column_widths",
    "count_subscribers",
    "count_undelivered",
    "create_digest",
    "delivery_counts",
    "digest_entries",
    "digest_exists",
    "digest_rates",
    "digest_row",
    "drop_import",
    "entries_by_id",
    "failed_deliveries",
    "feed_row",
    "feed_rows",
    "feeds_overview",
    "from_text",
    "get_by_email",
    "get_by_id",
    "get_by_token",
    "get_state",
    "iter_subscribers",
    "last_digest_activity",
    "last_feed_check",
    "list_bounces",
    "move_feed",
    "next_digest_id",
    "next_retry",
    "open_db",
    "open_snapshot",
    "opened",
    "peek_feed_row",
    "pending_count",
    "pending_entries",
    "reactivate",
    "recent_digests",
    "record_delivery",
    "record_entries",
    "remove_feed",
    "remove_subscriber",
    "set_digest_status",
    "set_state",
    "set_subscriber_status",
    "sqlite_hint",
    "stage_rows",
    "staged_line",
    "start_import",
    "status_counts",
    "to_text",
    "transaction",
    "undelivered_subscribers",
    "unfinished_digests",
    "unsubscribe_token",
    "update_feed",
    "utcnow",
    "write_transaction",
]
