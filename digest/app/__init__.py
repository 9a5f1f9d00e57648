"""The one door: everything the CLI, the web app and the worker may use of digest.

The shells import from here (and from the plain values and rules beneath:
models, config, errors, addresses, text, tokens), never a stage or the store
by its own path; ``make lint`` holds them to it.  The library itself is in
the modules beside this one: ``job`` (the run and its dry run), ``reading``
(the run's ingest), ``tryouts`` (previews, matches, test sends, resends),
``queries`` (status, sources, history), ``accounts`` (what readers and
operators do to a subscription), ``admins`` (the dashboard's accounts),
``apikeys`` (the JSON API's keys), ``views`` (the JSON shape of each thing shown)
and ``metrics`` (what monitoring reads).
"""

from digest.deliver import (
    ComposeSettings,
    PermanentFailure,
    TemporaryFailure,
    Transport,
    personal_links,
    transport_for,
)
from digest.inbound import MAX_MESSAGE_BYTES, from_mailbox, verdict
from digest.locking import RunInProgress, describe_holder
from digest.plan import NOTHING_NEW, Skip, Wait
from digest.render import (
    PaperView,
    PersonalLinks,
    RenderedEmail,
    long_date,
    paper_view,
    shipped_themes,
)
from digest.select import Match
from digest.store import RunRecord, Store, SubscriberRow

__all__ = [
    "MAX_MESSAGE_BYTES",
    "NOTHING_NEW",
    "ComposeSettings",
    "Match",
    "PaperView",
    "PersonalLinks",
    "RenderedEmail",
    "PermanentFailure",
    "RunInProgress",
    "RunRecord",
    "Skip",
    "Store",
    "SubscriberRow",
    "TemporaryFailure",
    "Transport",
    "Wait",
    "shipped_themes",
    "describe_holder",
    "from_mailbox",
    "long_date",
    "paper_view",
    "personal_links",
    "transport_for",
    "verdict",
]
