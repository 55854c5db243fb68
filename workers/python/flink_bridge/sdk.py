"""What a segment sees: messages as the prototype's worker had them.

A segment is any class with ``process(message) -> list of Message`` and, optionally,
``watermark(timestamp) -> list of Message``; its constructor takes the step's ``config`` as keyword
arguments. Its state goes into Flink's checkpoints: ``snapshot() -> bytes`` / ``restore(bytes)`` where it
defines them, else the pickled instance. Window segments (the prototype's ``add(message, window_time,
window_key)`` and ``trigger(window_time, window_key)``) are described in docs/python-worker.md.

A step may keep cells, state of the key of the record it handles, which the bridge keeps in Flink's keyed state:
it declares them in its constructor with ``value_cell(name)`` and ``map_cell(name)`` (see ``flink_bridge.cells``).
It may set timers for that key too: it declares them in its constructor with ``timers()``, sets and deletes them while
it handles a record or a firing, and handles their firings in ``on_timer(timestamp, domain) -> list of Message`` (see
``flink_bridge.timers``).

The built-in ``window`` step takes a user aggregate, ``aggregate: module.Class``: a class with a constructor taking
no arguments and ``add(accumulator, record) -> accumulator``, ``merge(a, b) -> accumulator`` and
``result(accumulator) -> value``, its accumulators bytes and its result anything ``json.dumps`` writes (see
``WindowAggregate``, which it may subclass, and docs/steps.md).

A segment that needs processing time reads ``current_time_millis()``, never the system clock: it is the time the
bridge stamped on the inputs, so a recovery in place that replays them gives the segment the same times.
"""
import abc
import time

from .timers import EVENT_TIME, PROCESSING_TIME, TimeDomain  # noqa: F401 (what on_timer's domain is)

# A session process serves one session: its clock is this process's.
_stamped_millis = None


def current_time_millis():
    """Processing time (ms since the epoch) as of the input being processed: the bridge's clock, stamped on
    the inputs and journaled with them; this process's clock until the bridge has sent one."""
    return time.time_ns() // 1_000_000 if _stamped_millis is None else _stamped_millis


def stamp_clock(millis):
    """The bridge's clock reached ``millis`` (a CLOCK input)."""
    global _stamped_millis
    _stamped_millis = millis


def value_cell(name, ttl_ms=0):
    """Declares a value cell of the step being built (in its constructor): one bytes value per key, gone ``ttl_ms``
    milliseconds of processing time after it was written (0: never). See ``flink_bridge.cells``."""
    from . import cells  # it reads this module's clock
    return cells.value_cell(name, ttl_ms)


def map_cell(name, ttl_ms=0):
    """Declares a map cell of the step being built (in its constructor): bytes keys to bytes values per key, each
    entry gone ``ttl_ms`` milliseconds of processing time after it was written (0: never). See
    ``flink_bridge.cells``."""
    from . import cells
    return cells.map_cell(name, ttl_ms)


def timers():
    """Declares that the step being built sets timers (in its constructor), for the key of the record or firing it
    handles; gives the handle it sets and deletes them with (``set_event_time(ms)``, ``set_processing_time(ms)``,
    ``delete_event_time(ms)``, ``delete_processing_time(ms)``). The step's ``on_timer(timestamp, domain)`` handles
    their firings. See ``flink_bridge.timers``."""
    from . import timers as declared
    return declared.timers()


def current_key():
    """The key of the record (or the timer's firing) being handled, as bytes; None outside one or in a session that is
    not keyed."""
    from . import cells
    return cells.current_key()


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


class WindowAggregate(abc.ABC):
    """A user aggregate of the built-in ``window`` step (docs/steps.md), named by its ``aggregate`` config as
    ``module.Class`` and imported as a user step is; made with no arguments. Flink's AggregateFunction with the
    accumulator as bytes: the step keeps the accumulators in its cells, so they are the same bytes in every worker (the
    Java worker's ``org.flinkbridge.worker.sdk.WindowAggregate``; the Rust worker hosts the Python class) and in every
    checkpoint; an instance keeps nothing a checkpoint needs.

    The step keeps one accumulator per key and *pane*, the slice of gcd(``size_ms``, ``slide_ms``) ms that a record
    falls in, so each record is added once however many sliding windows hold it; a window's value when it fires is
    ``merge`` of its panes' accumulators in time order (a window of one pane takes its accumulator as it is: tumbling
    windows never merge), then ``result``, the field ``result`` of the output. An exception fails the record (``add``)
    or the firing (``merge``, ``result``), naming the step and the class; so does an accumulator that is not bytes, or
    a result that ``json.dumps`` cannot write.

    Subclassing this is optional: any class with the three methods is an aggregate."""

    @abc.abstractmethod
    def add(self, accumulator, record):
        """The accumulator (bytes) with ``record`` (a Message) added; ``accumulator`` is None for a pane's first."""

    @abc.abstractmethod
    def merge(self, a, b):
        """The accumulator (bytes) of two panes' records, ``a``'s before ``b``'s."""

    @abc.abstractmethod
    def result(self, accumulator):
        """A window's result from its accumulator: any value ``json.dumps`` writes."""
