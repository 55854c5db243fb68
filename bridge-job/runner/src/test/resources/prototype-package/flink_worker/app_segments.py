"""Segments written for the prototype's worker: they return this package's own protobuf Message, and their state
is their pickled instance (the prototype's default)."""
import json
import time

from flink_worker.flink_worker_pb2 import Message


class RunningCount:
    """Counts the records of each key (the JSON field ``key``) and returns the count so far."""

    def __init__(self):
        self.counts = {}

    def process(self, message):
        key = json.loads(message.payload)["key"]
        self.counts[key] = self.counts.get(key, 0) + 1
        payload = json.dumps({"key": key, "count": self.counts[key]}).encode()
        return [Message(payload=payload, headers=message.headers, timestamp=message.timestamp)]


class BatchingSegment:
    """Batches the records' ids, closing a batch by the wall clock (``time.time()``) as the prototype's batching
    segment does, and stamps each batch with the time it closed: a replay gives other batches than the first run."""

    def __init__(self, max_batch_size=1000, max_wait_seconds=0.02):
        self.max_batch_size = max_batch_size
        self.max_wait_seconds = max_wait_seconds
        self.ids = []
        self.opened_at = None

    def process(self, message):
        now = time.time()
        if self.opened_at is None:
            self.opened_at = now
        self.ids.append(json.loads(message.payload)["id"])
        if len(self.ids) >= self.max_batch_size or now - self.opened_at >= self.max_wait_seconds:
            return self._close(now, message.timestamp)
        return []

    def watermark(self, timestamp):
        return self._close(time.time(), timestamp) if self.ids else []

    def _close(self, now, timestamp):
        batch = Message(payload=json.dumps({"ids": self.ids, "closed_at": now}).encode(),
                        headers={"batch_size": str(len(self.ids))}, timestamp=timestamp)
        self.ids = []
        self.opened_at = None
        return [batch]
