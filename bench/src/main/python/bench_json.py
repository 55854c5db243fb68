"""A JSON step written as a prototype-style segment, for the end-to-end benchmark's python-segment variants: the
same class in the Python worker and hosted by the Rust worker, so the two differ only in what hosts it."""
import json


class AppendField:
    """Parses the payload, sets a field, writes it back: what the built-in append_field step does."""

    def __init__(self, field="processed"):
        self.field = field

    def process(self, message):
        document = json.loads(message.payload)
        document[self.field] = True
        message.payload = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
        return [message]
