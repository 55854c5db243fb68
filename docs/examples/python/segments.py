"""Segments for examples/python/pipeline.yaml, written as for the prototype's worker: a class whose
process(message) returns a list of messages. Nothing here knows about Flink, rings or checkpoints."""
import json

from flink_bridge.sdk import Message


class KeyTotals:
    """Keeps each key's number of events and the sum of their `field`, and emits both with every event.

    The totals are the segment's state: the worker pickles the instance into Flink's checkpoints (one instance
    per Flink key group), so after a failure the job resumes with the totals of its last checkpoint.
    """

    def __init__(self, field="value"):
        self.field = field
        self.totals = {}

    def process(self, message):
        event = json.loads(message.payload)
        key = event["key"]
        count, total = self.totals.get(key, (0, 0))
        count, total = count + 1, total + event[self.field]
        self.totals[key] = (count, total)
        result = {"key": key, "count": count, "total": total}
        return [Message(json.dumps(result, separators=(",", ":")).encode(), {"key": key}, message.timestamp)]
