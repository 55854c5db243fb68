"""User aggregates of the built-in ``window`` step for its tests, each reading the integer field ``v`` of a record's
JSON payload: the Java worker's tests have the same ones (TestAggregates), with the same accumulators and results,
and the Rust worker's tests host these."""
import json
import struct

from flink_bridge.sdk import WindowAggregate

_SUMS = struct.Struct(">qq")


def v(record):
    return json.loads(record.payload)["v"]


class Average(WindowAggregate):
    """The mean of v: the accumulator is the sum and the count (16 bytes, each an i64 big-endian)."""

    def add(self, accumulator, record):
        total, count = (0, 0) if accumulator is None else _SUMS.unpack(accumulator)
        return _SUMS.pack(total + v(record), count + 1)

    def merge(self, a, b):
        (x, m), (y, n) = _SUMS.unpack(a), _SUMS.unpack(b)
        return _SUMS.pack(x + y, m + n)

    def result(self, accumulator):
        total, count = _SUMS.unpack(accumulator)
        return total / count


class Trace:
    """Shows the calls (and needs no base class): the accumulator is the text of the values added, comma-separated
    (UTF-8); a merge writes ``[a|b]``, and the result is the object ``{"trace": text}``."""

    def add(self, accumulator, record):
        value = str(v(record))
        return (value if accumulator is None else f"{accumulator.decode()},{value}").encode()

    def merge(self, a, b):
        return f"[{a.decode()}|{b.decode()}]".encode()

    def result(self, accumulator):
        return {"trace": accumulator.decode()}


class Failing(Trace):
    """Trace, failing where told: add on v = 13, merge always, result on a window holding v = 99; a window holding
    v = 0 has a result that is no JSON."""

    def add(self, accumulator, record):
        if v(record) == 13:
            raise RuntimeError("told to fail on 13")
        return super().add(accumulator, record)

    def merge(self, a, b):
        raise RuntimeError("told not to merge")

    def result(self, accumulator):
        text = accumulator.decode()
        if text == "99":
            raise RuntimeError("told to fail on 99")
        return object() if text == "0" else text


class Forgetful(Trace):
    """Returns no accumulator."""

    def add(self, accumulator, record):
        return None


class NoMerge:
    """Not an aggregate: it has no merge."""

    def add(self, accumulator, record):
        return b""

    def result(self, accumulator):
        return None


class Partial(WindowAggregate):
    """Subclasses WindowAggregate without its merge: it cannot be made."""

    def add(self, accumulator, record):
        return b""

    def result(self, accumulator):
        return None
