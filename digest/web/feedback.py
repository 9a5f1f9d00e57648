""" "More like this" and "Less like this": the links on every card of a digest.

Mail scanners open every link in a message, so a GET (or HEAD) only shows a
page with the choice; the reader's POST records it.  A vote can be changed
or taken back, and the same vote twice is one vote.
"""

from __future__ import annotations

from flask import Blueprint, abort, request

from digest.app import accounts
from digest.identity import MAX_AUTHOR_CHARS, author_key
from digest.models import StoredEntry, Subscriber
from digest.subscriptions import has_left
from digest.tokens import TokenError, preferences_url, read_feedback_token
from digest.web.context import context, left_page, page, use_newsletter

feedback = Blueprint("feedback", __name__)

#: What a vote button says, by the value it posts.
VOTES = {"more": 1, "less": -1, "clear": 0}


def paper_key(stored: StoredEntry) -> str:
    """How feedback names a paper: its identity, which later sources keep."""
    return stored.entry.fingerprint


@feedback.route("/feedback/<token>", methods=["GET", "POST"])
def vote(token: str) -> tuple[str, int]:
    """Show the choice for one paper (GET), or record the reader's (POST): a vote, or
    following one of its authors (``?v=follow`` shows those)."""
    subscriber, stored = _reader_and_paper(token)
    found = context()
    if has_left(subscriber):  # nothing here changes anything for a reader who left
        return left_page(subscriber)
    key = paper_key(stored)
    recorded = None
    if request.method == "POST":
        if "author" in request.form:
            recorded = _follow(subscriber, stored, request.form["author"])
        else:
            choice = request.form.get("vote", "")
            if choice not in VOTES:
                abort(400, description="Choose more or less like this.")
            accounts.vote(found.store, subscriber.id, key, VOTES[choice], now=found.clock())
            recorded = choice
    current = found.store.feedback_of([subscriber.id], paper=key)[subscriber.id]
    now_vote = current[0].vote if current else 0
    wanted = request.args.get("v", "")
    followed = {f.key for f in found.store.follows_of([subscriber.id])[subscriber.id]}
    return page(
        "feedback.html",
        title=stored.entry.title,
        url=stored.entry.url,
        current={1: "more", -1: "less"}.get(now_vote),
        wanted=wanted if wanted in (*VOTES, "follow") else "",
        recorded=recorded,
        authors=[(name, author_key(name) in followed) for name in stored.entry.authors],
        preferences_url=preferences_url("", found.settings.secret_key, subscriber.id),
    )


def _reader_and_paper(token: str) -> tuple[Subscriber, StoredEntry]:
    """The reader and the paper a card's link names (404 when either is gone)."""
    found = context()
    try:
        subscriber_id, entry_id = read_feedback_token(found.settings.secret_key, token)
    except TokenError:
        abort(404, description="This link is not valid. Please use the link from your email.")
    subscriber = found.store.get_subscriber_by_id(subscriber_id)
    stored = found.store.get_entry(entry_id)
    if subscriber is None or stored is None:
        abort(404, description="This paper or reader is no longer here.")
    use_newsletter(subscriber.newsletter)  # the request is now about its newsletter
    return subscriber, stored


def _follow(subscriber: Subscriber, stored: StoredEntry, author: str) -> str:
    """Follow (or stop following) one of this paper's authors: only a name the paper
    has, so that a link can follow nobody else."""
    found = context()
    names = {author_key(name): name for name in stored.entry.authors}
    name = names.get(author_key(author[:MAX_AUTHOR_CHARS]))
    if name is None:
        abort(400, description="Choose one of this paper's authors.")
    if request.form.get("follow", "yes") == "no":
        accounts.unfollow(found.store, subscriber.id, name)
        return f"unfollowed:{name}"
    accounts.follow(found.store, subscriber.id, name, paper=paper_key(stored), now=found.clock())
    return f"followed:{name}"
