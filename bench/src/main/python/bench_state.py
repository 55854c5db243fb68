"""The state benchmark's step keeping 1 KiB per key (bench's StateBlobStep in the Java worker): each record sets its
key's value to the key's count of records so far (8 bytes, little-endian) and random bytes (so that no compression
shrinks the state), and is answered with itself, its header "count" set to that count (the benchmark checks it after a
worker is killed: each key's records counted exactly once). CellBlob keeps the values in a value cell, in Flink's
keyed state; InstanceBlob in a dict by the record's "key" header, taken whole at each checkpoint (whole-instance
state)."""
import os
import struct

from flink_bridge.sdk import Message, value_cell

VALUE_BYTES = 1024
COUNT = struct.Struct("<q")
LENGTH = struct.Struct("<I")


def _next(held):
    count = 1 if held is None else COUNT.unpack_from(held)[0] + 1
    return COUNT.pack(count) + os.urandom(VALUE_BYTES - COUNT.size)


def _counted(message, value):
    """The answer: the record, its header "count" set to the count in its key's new value."""
    return Message(message.payload, {**message.headers, "count": str(COUNT.unpack_from(value)[0])},
                   message.timestamp)


class CellBlob:
    def __init__(self):
        self.blob = value_cell("blob")

    def process(self, message):
        value = _next(self.blob.get())
        self.blob.set(value)
        return [_counted(message, value)]


class InstanceBlob:
    def __init__(self):
        self.values = {}

    def process(self, message):
        key = message.headers.get("key")
        if key is None:
            raise ValueError("the record has no header 'key'")
        value = _next(self.values.get(key))
        self.values[key] = value
        return [_counted(message, value)]

    def snapshot(self):
        parts = []
        for key, value in self.values.items():
            encoded = key.encode()
            parts += (LENGTH.pack(len(encoded)), encoded, LENGTH.pack(len(value)), value)
        return b"".join(parts)

    def restore(self, state):
        view = memoryview(state)
        position = 0
        while position < len(view):
            (length,) = LENGTH.unpack_from(view, position)
            key = bytes(view[position + 4:position + 4 + length]).decode()
            position += 4 + length
            (length,) = LENGTH.unpack_from(view, position)
            self.values[key] = bytes(view[position + 4:position + 4 + length])
            position += 4 + length
