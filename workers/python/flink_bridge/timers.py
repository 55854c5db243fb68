"""Timers: a step sets and deletes event-time and processing-time timers for the key of the input it handles, and
the bridge holds them in Flink's timer service (docs/protocol.md, "Timers").

A step declares that it uses timers in its constructor with ``sdk.timers()``, where it declares its cells, and
handles their firings in ``on_timer(timestamp, domain)`` (an example: ``tests/test_readme_example.py``).

A timer is its key (the key of the input being handled), the step that set it, its domain and its timestamp: setting
one that is set changes nothing, deleting one that is not set is no error. An event-time timer fires once a watermark
reaches its timestamp, a processing-time one once the bridge's clock does; the bridge then sends a ``TIMER`` input, and
the worker runs the step's ``on_timer(timestamp, domain)`` with the key current (its cells readable, its timers
settable), handing what it returns through the steps after it.

This module is the worker's side of that: the ``TimerStore`` of a session knows which steps declared timers and
collects, while an input is handled, the changes its steps make (``session`` frames them as one ``TIMERS`` answer).
"""
import contextlib
import enum


class TimeDomain(enum.IntEnum):
    """The time a timer runs on, numbered as bridge_data.proto's TimeDomain."""

    EVENT_TIME = 1
    PROCESSING_TIME = 2


EVENT_TIME = TimeDomain.EVENT_TIME
PROCESSING_TIME = TimeDomain.PROCESSING_TIME
# TimerOp, as bridge_data.proto numbers it.
SET, DELETE = 1, 2
_OP_NAMES = {SET: "set", DELETE: "delete"}
_OP_DONE = {SET: "set", DELETE: "deleted"}
_MIN_LONG, _MAX_LONG = -2 ** 63, 2 ** 63 - 1


class TimersNotKeyed(ValueError):
    """A session that is not keyed whose steps declare timers: refused (FAILED_PRECONDITION)."""


class TimerOutsideInput(RuntimeError):
    """A timer set or deleted while no keyed record or firing is being handled (a watermark, a constructor)."""


# The steps being built, innermost last, and the stores their timers go to: (store, step index, step name, declared)
# each, ``declared`` a list that gets one entry per timers() call.
_declaring = []


def timers():
    """Declares that the step being built sets timers (call it in the step's constructor), and gives the handle it sets
    and deletes them with."""
    if not _declaring:
        raise RuntimeError("timers() is called where no session keeps timers: a step declares its timers in its "
                           "constructor, as a worker session (protocol version 6 or later) builds it; the prototype's "
                           "service (grpc_mode compat) has no keys and so no timers")
    store, step_index, step, declared = _declaring[-1]
    store._declare(step_index, step)
    declared.append(True)
    return Timers(store, step_index, step)


class TimerStore:
    """A session's timers: the steps that declared them (index -> name) and the changes the input being handled made,
    ``(op, step index, domain, timestamp)`` each in the order the steps made them."""

    def __init__(self):
        self.steps = {}
        # Once the first instance of the segment is built, later instances declare timers in the same steps.
        self._sealed = False
        self.active = False
        self.changes = []

    @contextlib.contextmanager
    def declaring(self, step_index, step, restoring=False):
        """Timers declared while the step at ``step_index`` (named ``step``) is built are its timers. ``restoring``:
        the step's state is being restored, which declares them again where the state is the pickled instance, and
        not where it is the step's own bytes."""
        declared = []
        _declaring.append((self, step_index, step, declared))
        try:
            yield
        finally:
            _declaring.pop()
        if self._sealed and not restoring and not declared and step_index in self.steps:
            raise ValueError(f"step '{step}' did not declare timers this time, as it did when the session opened: a "
                             "step declares the same timers whenever it is built")

    def seal(self):
        """The declarations are complete: a step built again (a new key group's instance) must declare the same."""
        self._sealed = True

    def _declare(self, step_index, step):
        if step_index in self.steps:
            return
        if self._sealed:
            raise ValueError(f"step '{step}' declares timers, but it did not when the session opened: a step declares "
                             "the same timers whenever it is built")
        self.steps[step_index] = step

    @property
    def declared(self):
        """Whether any step declared timers (``OpenSessionResponse.timers``)."""
        return bool(self.steps)

    def begin(self):
        """A keyed record or a firing is being handled: its steps may set and delete timers of its key."""
        self.active = True
        self.changes = []

    def end(self):
        """The input is done: what it changed was taken (``changes``) or is dropped (it failed)."""
        self.active = False
        self.changes = []


def _checked_timestamp(timestamp, step, what):
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or not _MIN_LONG <= timestamp <= _MAX_LONG:
        raise TypeError(f"step '{step}': {what} a timer at {timestamp!r}: a timer's timestamp is milliseconds as an "
                        "int that fits 64 bits")
    return timestamp


class Timers:
    """The handle a step sets and deletes its timers with (``timers()``): each change is for the key of the input being
    handled, so it is made only while the step handles a keyed record (``process``) or a firing (``on_timer``)."""

    __slots__ = ("_store", "_step_index", "_step")

    def __init__(self, store, step_index, step):
        self._store = store
        self._step_index = step_index
        self._step = step

    def set_event_time(self, timestamp):
        """A timer that fires once the watermark reaches ``timestamp`` (ms)."""
        self._change(SET, EVENT_TIME, timestamp)

    def delete_event_time(self, timestamp):
        self._change(DELETE, EVENT_TIME, timestamp)

    def set_processing_time(self, timestamp):
        """A timer that fires once the bridge's clock (``current_time_millis()``) reaches ``timestamp`` (ms)."""
        self._change(SET, PROCESSING_TIME, timestamp)

    def delete_processing_time(self, timestamp):
        self._change(DELETE, PROCESSING_TIME, timestamp)

    def set(self, timestamp, domain):
        """A timer at ``timestamp`` in ``domain`` (``EVENT_TIME`` or ``PROCESSING_TIME``)."""
        self._change(SET, self._domain(domain), timestamp)

    def delete(self, timestamp, domain):
        self._change(DELETE, self._domain(domain), timestamp)

    def _domain(self, domain):
        try:
            return TimeDomain(domain)
        except ValueError:
            raise ValueError(f"step '{self._step}': {domain!r} is no time domain: EVENT_TIME or PROCESSING_TIME "
                             "(flink_bridge.sdk)") from None

    def _change(self, op, domain, timestamp):
        timestamp = _checked_timestamp(timestamp, self._step, f"cannot {_OP_NAMES[op]}")
        store = self._store
        if not store.active:
            raise TimerOutsideInput(
                f"step '{self._step}': a timer is {_OP_DONE[op]} outside a keyed record or a firing: a timer belongs to the key "
                "of the input being handled, so a step sets and deletes timers only in process() and on_timer() of a "
                "keyed session (not in a watermark, a snapshot, a constructor, or a session that is not keyed)")
        store.changes.append((op, self._step_index, domain, timestamp))

    def __repr__(self):
        return f"Timers(step '{self._step}')"

    def __reduce__(self):
        # A pickled instance keeps its timers as their declaration: the instance restored declares them again, in the
        # session that restores it.
        from flink_bridge import sdk
        return sdk.timers, ()
