"""The message bytes: headers that parse back to what was meant, and nothing injected."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, date, datetime
from email.header import decode_header, make_header

from hypothesis import given
from hypothesis import strategies as st

from digest.deliver.compose import message_id_for
from digest.deliver.message import Envelope, build_message, one_line
from digest.models import Edition
from digest.render import RenderedEmail

ENVELOPE = Envelope(
    sender_name="Daily papers",
    sender_address="digest@example.org",
    recipient_address="ada@example.org",
    recipient_name="Ada",
    list_name="Daily papers",
    unsubscribe_url="https://digest.example.org/unsubscribe/TOKEN",
    unsubscribe_mailto="digest@example.org",
)
SENT = datetime(2026, 11, 28, 7, tzinfo=UTC)
text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200)


def parse(raw: bytes) -> email.message.EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


#: An RFC 2047 encoded-word (at most 75 characters, RFC 2047 section 2).
ENCODED_WORD = re.compile(rb"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


def display_name(raw: bytes, header: str) -> str:
    """A display name as RFC 2047 decodes it: whitespace between two encoded-words is
    dropped (the email package's address parser keeps it)."""
    head = raw.partition(b"\r\n\r\n")[0].decode("ascii").replace("\r\n ", " ")
    value = next(line for line in head.split("\r\n") if line.startswith(f"{header}: "))
    value = value.removeprefix(f"{header}: ")
    if "=?" not in value:
        return str(parse(raw)[header].addresses[0].display_name)
    return str(make_header(decode_header(value.rpartition(" <")[0])))


@given(subject=text, name=text, body=text, newsletter=text, eight_bit=st.booleans())
def test_any_subject_name_and_body_round_trip(
    subject: str, name: str, body: str, newsletter: str, eight_bit: bool
) -> None:
    rendered = RenderedEmail(subject=subject, html=f"<p>{body}</p>", text=body, shown=1, cut=0)
    changes = {"recipient_name": name, "sender_name": newsletter, "list_name": newsletter}
    envelope = Envelope(**{**ENVELOPE.__dict__, **changes})
    raw = build_message(
        rendered, envelope, message_id="<a@example.org>", sent_at=SENT, eight_bit=eight_bit
    )
    # Only a server that offers 8BITMIME is sent anything but ASCII, and headers never.
    assert raw.isascii() or eight_bit
    head = raw.partition(b"\r\n\r\n")[0]
    assert head.isascii()
    assert all(len(word) <= 75 for word in ENCODED_WORD.findall(head))
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert raw.count(b"\n") == raw.count(b"\r\n")
    message = parse(raw)
    assert str(message["Subject"]) == one_line(subject)
    assert display_name(raw, "To") == one_line(name)
    assert message["To"].addresses[0].addr_spec == "ada@example.org"
    assert display_name(raw, "From") == one_line(newsletter)
    unfolded = head.decode("ascii").replace("\r\n ", " ")
    list_line = next(line for line in unfolded.split("\r\n") if line.startswith("List-Id: "))
    assert re.search(r" <[a-z0-9-]+\.example\.org>$", list_line), list_line  # never encoded
    plain, html = message.iter_parts()
    assert plain.get_content().replace("\r\n", "\n").rstrip("\n") == body.replace(
        "\r\n", "\n"
    ).replace("\r", "\n").rstrip("\n")
    assert len([k for k in message.keys() if k.lower() == "subject"]) == 1


line = st.text(alphabet=st.sampled_from(" \t=.\r\nab\u00e9\u2014<>"), max_size=120)
#: Sometimes longer than SMTP's 998 bytes, which then needs an encoding.
long_line = st.integers(0, 1100).map(lambda n: "ab\u00e9= " * (n // 5))


@given(html=st.lists(line | long_line, max_size=6).map("\n".join), eight_bit=st.booleans())
def test_any_html_arrives_as_it_was_rendered(html: str, eight_bit: bool) -> None:
    rendered = RenderedEmail(subject="s", html=html, text="t", shown=1, cut=0)
    raw = build_message(
        rendered, ENVELOPE, message_id="<a@example.org>", sent_at=SENT, eight_bit=eight_bit
    )
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    message = email.message_from_bytes(raw, policy=email.policy.default)
    body = message.get_body(("html",))
    assert body is not None
    sent = body.get_content().replace("\r\n", "\n")
    expected = html.replace("\r\n", "\n").replace("\r", "\n")
    assert sent.rstrip("\n") == expected.rstrip("\n")


def test_header_lines_are_folded_under_78_characters() -> None:
    rendered = RenderedEmail(subject="word " * 40, html="<p>x</p>", text="x", shown=1, cut=0)
    raw = build_message(rendered, ENVELOPE, message_id="<a@example.org>", sent_at=SENT)
    head = raw.split(b"\r\n\r\n")[0]
    # Only a single word longer than a line (a URL with its token) may run over.
    assert all(len(line) <= 78 or b" " not in line.strip() for line in head.split(b"\r\n"))
    assert str(parse(raw)["Subject"]) == ("word " * 40).strip()


def test_nothing_can_add_a_header() -> None:
    evil = "Hi\r\nBcc: victim@example.org\nX-Evil: 1"
    rendered = RenderedEmail(subject=evil, html="x", text="x", shown=1, cut=0)
    envelope = Envelope(**{**ENVELOPE.__dict__, "recipient_name": evil, "sender_name": evil})
    message = parse(build_message(rendered, envelope, message_id="<a@example.org>", sent_at=SENT))
    assert message["Bcc"] is None and message["X-Evil"] is None


def _edition(edition_id: int, day: date) -> Edition:
    return Edition(edition_id, day, datetime(2026, 3, 21, tzinfo=UTC), 0)


def test_message_ids_are_stable_per_edition_and_subscriber() -> None:
    from datetime import date

    first = message_id_for("k", "i", _edition(1, date(2026, 3, 21)), 7, "example.org")
    assert first == message_id_for("k", "i", _edition(1, date(2026, 3, 21)), 7, "example.org")
    assert first != message_id_for("k", "i", _edition(1, date(2026, 3, 21)), 8, "example.org")
    assert first != message_id_for("k", "i", _edition(2, date(2026, 3, 22)), 7, "example.org")
    assert first != message_id_for("k", "other", _edition(1, date(2026, 3, 21)), 7, "example.org")
    assert first.startswith("<20260321.7.") and first.endswith("@example.org>")


def test_a_message_id_host_is_fully_qualified_even_at_localhost() -> None:
    local = message_id_for("k" * 40, "install", _edition(1, date(2026, 11, 28)), 7, "localhost")
    assert local.endswith("@localhost.localdomain>")
    assert message_id_for(
        "k" * 40, "install", _edition(1, date(2026, 11, 28)), 7, "example.org"
    ).endswith("@example.org>")


def test_each_part_goes_in_the_smallest_encoding_the_server_takes() -> None:
    def encodings(html: str, text: str, eight_bit: bool) -> list[str]:
        rendered = RenderedEmail(subject="s", html=html, text=text, shown=1, cut=0)
        raw = build_message(
            rendered, ENVELOPE, message_id="<a@example.org>", sent_at=SENT, eight_bit=eight_bit
        )
        return [str(part["Content-Transfer-Encoding"]) for part in parse(raw).iter_parts()]

    cjk = "<p>" + "\u6f22\u5b57\u304b\u306a" * 30 + "</p>\n"
    assert encodings(cjk * 20, "plain text", False) == ["7bit", "base64"]
    assert encodings(cjk * 20, "plain text", True) == ["7bit", "8bit"]
    accented = "<p>caf\u00e9 = na\u00efve</p>\n" * 20
    assert encodings(accented, "caf\u00e9", False) == ["quoted-printable", "quoted-printable"]
    # A line too long for SMTP is encoded even where 8-bit could go as it is.
    assert encodings("x" * 2000, "\u00e9" * 600, True) == ["base64", "quoted-printable"]
