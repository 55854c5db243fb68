"""What a segment sees: messages as the prototype's worker had them.

A segment is any class with ``process(message) -> list of Message`` and, optionally,
``watermark(timestamp) -> list of Message``; its constructor takes the step's ``config`` as keyword
arguments. Its state goes into Flink's checkpoints: ``snapshot() -> bytes`` / ``restore(bytes)`` where it
defines them, else the pickled instance. Window segments (the prototype's ``add(message, window_time,
window_key)`` and ``trigger(window_time, window_key)``) are described in docs/python-worker.md.
"""


class Message:
    """One record: ``payload`` (bytes), ``headers`` (str -> str) and ``timestamp`` (event time, ms)."""

    __slots__ = ("payload", "headers", "timestamp")

    def __init__(self, payload, headers=None, timestamp=0):
        self.payload = payload
        self.headers = {} if headers is None else headers
        self.timestamp = timestamp

    def with_payload(self, payload):
        return Message(payload, self.headers, self.timestamp)

    def __eq__(self, other):
        return (isinstance(other, Message) and self.payload == other.payload and self.headers == other.headers
                and self.timestamp == other.timestamp)

    def __repr__(self):
        return f"Message(payload={self.payload!r}, headers={self.headers!r}, timestamp={self.timestamp})"
