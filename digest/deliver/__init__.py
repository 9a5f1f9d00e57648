"""Delivery: the message bytes (``message``), composing them (``compose``), the
transports that hand them to a server (``transports``), and the sender that claims,
sends and records each delivery (``sender``)."""
