"""Mail that comes back: bounces, complaint reports and mailto unsubscribes.

``parse`` reads one message (pure), ``policy`` decides what it means for the
reader (pure), and ``handle`` applies it through the store.
"""

from digest.inbound.handle import from_mailbox, refused_at_send, verdict
from digest.inbound.mailbox import MailboxError, waiting
from digest.inbound.parse import MAX_MESSAGE_BYTES
from digest.inbound.policy import names_the_mailbox, status_of

__all__ = [
    "MAX_MESSAGE_BYTES",
    "MailboxError",
    "from_mailbox",
    "names_the_mailbox",
    "refused_at_send",
    "status_of",
    "verdict",
    "waiting",
]
