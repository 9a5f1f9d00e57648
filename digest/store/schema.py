"""The schema: every table digest keeps, as readable text (migrations follow it)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    true,
)

from digest.models import MAIN_NEWSLETTER

#: The Alembic revision of the schema below; a test checks it is the newest migration.
SCHEMA_REVISION = "0017"

metadata = MetaData()

entries = Table(
    "entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # arxiv:<id> or title:<normalised title>: see digest.identity.
    Column("fingerprint", String(600), nullable=False, unique=True),
    Column("arxiv_id", String(40), unique=True),
    Column("title_key", String(600), nullable=False, index=True),
    Column("title", Text, nullable=False),
    Column("abstract", Text, nullable=False),
    Column("authors", JSON, nullable=False),
    Column("url", Text),
    Column("pdf_url", Text),
    Column("hf_url", Text),
    Column("categories", JSON, nullable=False),
    Column("upvotes", Integer),
    # A one-sentence summary from the source (Hugging Face's ai_summary), or "".
    Column("summary", Text, nullable=False, server_default=""),
    Column("code_url", Text),
    Column("stars", Integer),
    Column("organization", String(200)),
    Column("published", Date),
    Column("source", String(200), nullable=False),
    Column("first_seen", DateTime(timezone=True), nullable=False, index=True),
)

editions = Table(
    "editions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("day", Date, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("entry_count", Integer, nullable=False),
    Column("newsletter", String(64), nullable=False, server_default=MAIN_NEWSLETTER),
    UniqueConstraint("newsletter", "day", name="one_edition_per_day"),
)

# Every source that brought each entry (``entries.source`` is the first): a newsletter
# takes a paper from any of its sources.
entry_sources = Table(
    "entry_sources",
    metadata,
    Column("entry_id", Integer, ForeignKey("entries.id"), primary_key=True),
    Column("source", String(200), primary_key=True),
)

# The entries each edition carried: each newsletter's editions carry an entry once.
edition_entries = Table(
    "edition_entries",
    metadata,
    Column("edition_id", Integer, ForeignKey("editions.id"), primary_key=True),
    Column("entry_id", Integer, ForeignKey("entries.id"), primary_key=True),
    Index("edition_entries_by_entry", "entry_id"),
)

# folded: not mailed on its own, its papers go into the reader's next email (cadence).
DELIVERY_STATES = ("queued", "sent", "failed", "skipped", "folded")

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("edition_id", Integer, ForeignKey("editions.id"), nullable=False),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    # Tries that were sent but never answered: the message may have arrived.
    Column("unknown_outcomes", Integer, nullable=False, default=0, server_default="0"),
    Column("message_id", String(300)),
    # The server's reply for a sent message, or why it failed or was skipped.
    Column("detail", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # A sender's lease on a queued delivery, so that several can share a queue.
    Column("claimed_by", String(300)),
    Column("claimed_until", DateTime(timezone=True)),
    # How many times an operator queued it again on purpose (``digest resend``), and
    # when last: each resend is a new message with a Message-ID of its own.
    Column("resends", Integer, nullable=False, default=0, server_default="0"),
    Column("resent_at", DateTime(timezone=True)),
    UniqueConstraint("edition_id", "subscriber_id", name="one_delivery_per_edition"),
    Index("deliveries_by_state", "edition_id", "status", "id"),
    # A reader's history (and when they were last mailed), for the operator.
    Index("deliveries_by_subscriber", "subscriber_id"),
)

subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False),
    # digest.address's key: two spellings of one mailbox are one subscriber (of each
    # newsletter: a person has one row, one consent, per newsletter).
    Column("email_key", String(320), nullable=False),
    Column("name", String(200)),
    Column("status", String(16), nullable=False, index=True),
    Column("topics", JSON, nullable=False),
    Column("theme", String(64)),
    Column("timezone", String(64)),
    # A paused subscriber stays active but gets no editions until resumed.
    Column("paused", Boolean, nullable=False, default=False),
    # Whether their emails may carry a card or two asking about a paper, to learn.
    Column("explore", Boolean, nullable=False, default=True, server_default=true()),
    # daily, weekly:<day> or threshold:<N> (digest.cadence).
    Column("cadence", String(32), nullable=False, default="daily", server_default="daily"),
    # For a weekly or threshold reader, the day of the edition last mailed to them: where
    # their next email's period begins.  NULL: not known yet (read from the deliveries);
    # kept only while their cadence gathers, so that a daily reader's send costs nothing.
    Column("period_start", Date),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("unsubscribed_at", DateTime(timezone=True)),
    # When a sign-up last mailed this address (a confirmation link, or "you get it
    # already"): the next waits out ``subscriptions.notice_interval``.
    Column("notice_sent_at", DateTime(timezone=True)),
    Column("newsletter", String(64), nullable=False, server_default=MAIN_NEWSLETTER),
    UniqueConstraint("email_key", "newsletter", name="one_subscriber_per_newsletter"),
)

# Every change of a subscriber's state: when, to what, through which channel.
subscriber_events = Table(
    "subscriber_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("state", String(16), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("detail", Text),
    Index("subscriber_events_by_subscriber", "subscriber_id", "id"),
)

# Per source, what its server said identifies the version it last sent (conditional GET).
source_state = Table(
    "source_state",
    metadata,
    Column("source", String(200), primary_key=True),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("fetched_at", DateTime(timezone=True), nullable=False),
)

# Per source, how its last check went: ok, unchanged or failed (with the reason).
source_checks = Table(
    "source_checks",
    metadata,
    Column("source", String(200), primary_key=True),
    Column("checked_at", DateTime(timezone=True), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("detail", Text),
    Column("read", Integer, nullable=False, default=0, server_default="0"),
    Column("new", Integer, nullable=False, default=0, server_default="0"),
    # When a read last brought new entries: a source silent past its calendar is stale.
    Column("last_new_at", DateTime(timezone=True)),
)

# One row: this installation's random id, made with the database.
installation = Table(
    "installation",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# One row per named lock: who holds it and until when (a lease, renewed while
# the holder works), so that one run at a time works across machines on any
# backend.
locks = Table(
    "locks",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(300), nullable=False),
    Column("acquired_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

# One token bucket per relay and limit: the tokens left when last counted, so that
# every run and sender process of an installation keeps a relay's quotas together.
rate_buckets = Table(
    "rate_buckets",
    metadata,
    Column("relay", String(300), primary_key=True),
    Column("per_seconds", Float, primary_key=True),
    Column("messages", Float, primary_key=True),
    Column("tokens", Float, nullable=False),
    Column("counted_at", DateTime(timezone=True), nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("holder", String(300), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False, index=True),
    Column("finished_at", DateTime(timezone=True)),
    # running, ok, partial (some failed or queued), interrupted, error
    Column("outcome", String(16), nullable=False),
    Column("summary", Text),
)

# What a reader said of a paper: +1 (more like this, a liked paper) or -1 (less like
# this).  The paper is named by arXiv id or normalised title (digest.identity), so a
# like can wait for a paper not stored yet.
feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id"), nullable=False),
    Column("paper", String(600), nullable=False),
    Column("vote", Integer, nullable=False),
    # vote (from an email or a page), like (named by the reader), library (imported)
    Column("kind", String(16), nullable=False),
    Column("weight", Float, nullable=False, default=1.0),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("subscriber_id", "paper", name="one_vote_per_paper"),
)

# Authors a reader follows (by name as the feeds write it; ``digest.identity``'s key),
# with the paper that made them follow: their new papers are always in the email.
follows = Table(
    "follows",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id"), nullable=False),
    Column("author_key", String(200), nullable=False),
    Column("author", String(200), nullable=False),
    Column("paper", String(600)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("subscriber_id", "author_key", name="one_follow_per_author"),
)

# The TF-IDF feature spaces, newest last; readers' models name the one they use.
feature_spaces = Table(
    "feature_spaces",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=True),
    Column("fitted_at", DateTime(timezone=True), nullable=False),
    Column("papers", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
)

# Each reader's model, fitted from their feedback as it was at feedback_at.
reader_models = Table(
    "reader_models",
    metadata,
    Column("subscriber_id", Integer, ForeignKey("subscribers.id"), primary_key=True),
    Column("space_version", Integer, nullable=False),
    Column("feedback_at", DateTime(timezone=True), nullable=False),
    Column("fitted_at", DateTime(timezone=True), nullable=False),
    Column("data", LargeBinary, nullable=False),
)

# Each reader's bounce score (digest.inbound.policy): its value, when a bounce last
# counted, and how much counted that day.
bounce_scores = Table(
    "bounce_scores",
    metadata,
    Column("subscriber_id", Integer, ForeignKey("subscribers.id"), primary_key=True),
    Column("value", Float, nullable=False),
    Column("counted_at", DateTime(timezone=True), nullable=False),
    Column("counted_today", Float, nullable=False),
)

# What came back: a bounce, a complaint, an unsubscribe by mail, an auto-reply, or
# a message nobody could read; with the delivery and edition it was about.
inbound_events = Table(
    "inbound_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id")),
    Column("delivery_id", Integer, ForeignKey("deliveries.id")),
    Column("edition_id", Integer, ForeignKey("editions.id"), index=True),
    Column("message_id", String(300)),
    Column("detail", Text),
)

# The operators who may sign in to /admin (``digest admin add``).
admins = Table(
    "admins",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False),
    Column("email_key", String(320), nullable=False, unique=True),
    # scrypt, with its parameters and salt (digest.passwords).
    Column("password_hash", String(300), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_login_at", DateTime(timezone=True)),
)

# A signed-in admin's session, named by a hash of its cookie's token (so a copy of
# the database opens none), until it expires or they sign out.
admin_sessions = Table(
    "admin_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("admin_id", Integer, ForeignKey("admins.id"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

# A key for the JSON API, named by a hash of its token (shown once, when it was made).
API_SCOPES = ("read", "write", "import")

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    # read; write (change readers, as the dashboard may); import (write, and add readers
    # as confirmed, for lists the operator vouches for).
    Column("scope", String(16), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True)),
)

# What happened, for webhooks: written in the transaction of the change it tells of.
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # The webhook-id receivers dedupe on: the same at every attempt.
    Column("event_id", String(40), nullable=False, unique=True),
    Column("type", String(40), nullable=False),
    Column("data", JSON, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    # Set for an event told once only (an edition's "sent").
    Column("once", String(100), unique=True),
)

# Each webhook's copy of each event it asked for: tried until its endpoint takes it.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("webhook", String(300), primary_key=True),
    Column("event", Integer, ForeignKey("events.id"), primary_key=True),
    Column("attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("next_at", DateTime(timezone=True), nullable=False),
    Column("done_at", DateTime(timezone=True)),
    Column("given_up", Boolean, nullable=False, default=False, server_default="false"),
    Column("last_status", String(300)),
    Column("last_at", DateTime(timezone=True)),
    Index("webhook_deliveries_due", "webhook", "done_at", "next_at"),
)

# How far each webhook has been given events (one added later starts from then).
webhook_cursors = Table(
    "webhook_cursors",
    metadata,
    Column("webhook", String(300), primary_key=True),
    Column("last_event", Integer, nullable=False),
)
