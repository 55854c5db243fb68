"""The steps of docs/examples/sentry/pipeline.yaml, written as a sentry_streams application writes its Map and
routing functions: plain classes whose process(message) returns a list of messages."""
import json

from flink_bridge.sdk import Message


def _with(message, **fields):
    event = json.loads(message.payload)
    event.update(fields)
    return Message(json.dumps(event, separators=(",", ":")).encode(), message.headers, message.timestamp)


class NoOpMap:
    """sentry_streams' no_op_map: every message on as it came."""

    def process(self, message):
        return [message]


class RoutingFunction:
    """A Router's routing_function: names each message's branch in a header, which the pipeline's route reads.

    Events of an even key go to the hello branch, the others to the goodbye branch."""

    def __init__(self, header="branch"):
        self.header = header

    def process(self, message):
        key = json.loads(message.payload)["key"]
        headers = dict(message.headers)
        headers[self.header] = "hello" if int(key.rsplit("-", 1)[1]) % 2 == 0 else "goodbye"
        return [Message(message.payload, headers, message.timestamp)]


class HelloMap:
    def process(self, message):
        return [_with(message, greeting="hello")]


class GoodbyeMap:
    def process(self, message):
        return [_with(message, greeting="goodbye")]
