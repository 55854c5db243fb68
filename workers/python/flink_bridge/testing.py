"""Runs a step as a worker session runs it, for tests without Flink or a worker (docs/python-worker.md).

``StepHarness`` builds the step with the worker's own code (``segments``): a built-in step by name, a segment
written for the prototype by ``module.Class`` or by the class itself, its config passed as the JSON a session
gets. It keeps one instance per key group, sends watermarks to every instance in key group order, and gives
checkpoints as the session's SnapshotState does. ``current_time_millis()`` reads only what
``set_processing_time`` stamped (a CLOCK input), and until then this process's clock.

A step that declares cells gets them as in a keyed session: each record is given with its key (``key=``), a key's
cells start empty (or as ``load_cells`` sets them), ``cells(key)`` shows them as the step reads them, and a cell used
outside a record (on a watermark) fails as it does in a session. A built-in step whose state is per-key cells only
in a keyed session (``running_count``, ``batch``, ``count``) runs as in a keyed session when its records come with
their keys, and as in one that is not keyed when they come without (the first input decides, unless ``keyed=`` did).

A step that sets timers gets them as the bridge keeps them: the harness holds each key's pending timers (``timers(key)``),
fires the event-time ones a watermark reaches before the watermark reaches the step (in timestamp order), fires the
processing-time ones ``set_processing_time`` reaches, and carries them, with the cells, through ``checkpoint`` and
``restore``.
"""
import json

from . import sdk
from .cells import VALUE, CellsNotKeyed, CellStore
from .segments import MAX_WATERMARK, UNKEYED, KeyGroupInstances, StepFailed
from .timers import DELETE, EVENT_TIME, PROCESSING_TIME, TimersNotKeyed, TimerStore

# The built-in steps that keep their state in cells only in a keyed session, and as their own state otherwise.
_CELLS_WHEN_KEYED = frozenset({"running_count", "batch", "count"})


class Checkpoint(dict):
    """What ``StepHarness.checkpoint`` gives: each key group's state (a dict, as SnapshotState gives it), and beside it
    what Flink's checkpoint holds of the session's keys: ``cells`` (key -> its cells as stored) and ``timers`` (the
    pending timers: (key, step index, domain, timestamp) -> the key group that set it)."""

    def __init__(self, states, cells=None, timers=None):
        super().__init__(states)
        self.cells = cells or {}
        self.timers = timers or {}


class StepHarness:
    """Each input returns its outputs (a list of messages). An input that raises fails with the step's own
    exception and, as in a session, every later input is refused."""

    def __init__(self, step, config=None, name=None, keyed=None):
        """``step``: a built-in step's name, ``"module.Class"``, or a segment class; ``config``: the step's
        config, a dict (or its JSON text); ``name``: its ``step_name`` (default: the type); ``keyed``: build the
        step as a keyed session (True) or one that is not (False) does; None (the default): as a keyed one, except
        a built-in step that keeps its state in cells only when keyed (``running_count``, ``batch``, ``count``), which
        waits for the first input: a record with its key (or ``load_cells``) makes the harness keyed, a record without
        one (or a restored checkpoint with whole-instance state) makes it not. A ValueError when the step cannot be built, as
        a session is refused (``CellsNotKeyed`` or ``TimersNotKeyed`` when ``keyed`` is False and the step declares cells
        or timers)."""
        config_json = config if isinstance(config, str) else "" if config is None else json.dumps(config)
        if isinstance(step, type):
            # A class is served as the worker's own segments are (--segments): by the class, not its name.
            label = f"{step.__module__}.{step.__qualname__}"
            described, own = (name or label, "", config_json), (label, step)
        else:
            described, own = (name or step, step, config_json), None
        # A session process has a clock of its own: each harness keeps its own, stamped around each call.
        self._clock = None
        self._failure = None
        self._closed = False
        self._described, self._own = described, own
        # The pending timers as the bridge holds them: (key, step index, domain, timestamp) -> the key group of the
        # input that set it, whose instance its firing goes to.
        self._pending = {}
        self._build(keyed is not False)
        if keyed is False and self._cells.specs:
            spec = self._cells.specs[0]
            raise CellsNotKeyed(f"step '{spec.step}' declares cell '{spec.name}', but the harness is not keyed "
                                "(keyed=False): cells live under the record's key")
        if keyed is False and self._timers.declared:
            raise TimersNotKeyed(f"step '{described[0]}' sets timers, but the harness is not keyed (keyed=False): a "
                                 "timer belongs to the key of the input that sets it")
        # Whether the harness is keyed: open (None) for a built-in step with cells only when keyed, until an input
        # decides it; for any other step it makes no difference.
        undecided = keyed is None and bool(self._cells.specs) and described[1] in _CELLS_WHEN_KEYED
        self._keyed = None if undecided else keyed is not False
        # What decided such a step is not keyed, once something did: for the error of a later keyed input.
        self._unkeyed_by = None

    def _build(self, keyed):
        self._cells = CellStore()
        self._timers = TimerStore()
        self._instances = self._on_own_clock(KeyGroupInstances.of, [self._described], self._own, self._cells,
                                             keyed, self._timers)

    def _run_keyed(self, keyed, unkeyed_by=None):
        """An input that runs the step keyed or not: decides it while it is open (``unkeyed_by``: what decides it
        is not, for a later error), building the step not keyed then. A ValueError for a keyed input once an
        earlier one decided that a step keeping its state in cells only when keyed is not."""
        if self._keyed is None:
            self._keyed = keyed
            if not keyed:
                self._unkeyed_by = unkeyed_by
                self._build(False)
        elif keyed and self._unkeyed_by is not None:
            step, step_type = self._described[:2]
            raise ValueError(f"step '{step}' ({step_type}) runs as in a session that is not keyed "
                             f"({self._unkeyed_by}), keeping its state whole, not in cells: give every record its "
                             "key, or none (or build the harness with keyed=True)")

    def restore(self, states):
        """Hands each key group its state (what ``checkpoint`` gave), as RestoreState does, and the keys' cells and
        pending timers the checkpoint holds beside, as Flink restores them: before any input."""
        cells, timers = getattr(states, "cells", None), getattr(states, "timers", None)
        if cells or timers:
            self._run_keyed(True)
        elif self._keyed is None and any(states.values()):
            # Whole-instance state: what the step keeps when it is not keyed.
            self._run_keyed(False, "a checkpoint with whole-instance state was restored into it")
        if cells:
            count = len(self._cells.specs)
            for key, contents in cells.items():
                if len(contents) != count:
                    raise ValueError(f"the checkpoint holds {len(contents)} cell(s) of key {key!r}, but the step "
                                     f"declares {count} ({self._cell_names()})")
                self._cells.resident[key] = _copied(contents)
        if timers:
            self._pending.update(timers)
        self._on_own_clock(self._instances.restore, states)

    def process(self, message, key_group=UNKEYED, key=None):
        """A record, to the instance of its Flink key group (0 to 32767; UNKEYED: a stream that is not keyed);
        ``key``: the record's key (bytes, or text as UTF-8), which a step with cells needs: its cells are that
        key's."""
        self._run_keyed(key is not None, "its first record came without a key")
        if key is None:
            if self._cells.specs:
                raise ValueError(f"the step declares cells ({self._cell_names()}): give process() the record's key "
                                 "(key=...), whose cells they are")
            return self._serve(lambda emit: self._instances.for_key_group(key_group).process(message, emit))
        key = self._key(key)
        return self._serve(lambda emit: self._keyed_input(key, key_group, lambda instance: instance.process(message,
                                                                                                            emit)))

    def _keyed_input(self, key, key_group, handle):
        """``handle(instance)`` of the key group's instance with ``key`` current: its cells the steps', its timers
        settable; the timers it set or deleted are pending or gone once it returns."""
        cells, timers = self._cells, self._timers
        cells.make_resident(key)
        cells.enter(key)
        timers.begin()
        try:
            handle(self._instances.for_key_group(key_group))
            pending = self._pending
            for op, step, domain, timestamp in timers.changes:
                if op == DELETE:
                    pending.pop((key, step, domain, timestamp), None)
                else:
                    pending.setdefault((key, step, domain, timestamp), key_group)
        finally:
            timers.end()
            cells.leave()

    def _fire_due(self, domain, until, emit):
        """Fires the timers of ``domain`` at or before ``until`` in timestamp order (then key and step), each gone
        once it fired; one a firing sets at or before ``until`` fires too."""
        pending = self._pending
        while True:
            due = [timer for timer in pending if timer[2] == domain and timer[3] <= until]
            if not due:
                return
            timer = min(due, key=lambda t: (t[3], t[0], t[1]))
            key_group = pending.pop(timer)
            key, step, _, timestamp = timer
            self._keyed_input(key, key_group, lambda instance: instance.on_timer((step, timestamp, domain), emit))

    def timers(self, key):
        """The pending timers of ``key``: (domain, timestamp) each, in order (``EVENT_TIME`` before
        ``PROCESSING_TIME``)."""
        key = self._key(key)
        return sorted((domain, timestamp) for timer_key, _, domain, timestamp in self._pending if timer_key == key)

    def cells(self, key):
        """The cells of ``key`` as the step reads them now: name -> a value cell's bytes (None: none), or a map
        cell's dict; nothing expired."""
        visible = self._on_own_clock(self._cells.visible, self._key(key))
        return {spec.name: (None if spec.kind == VALUE else {}) if visible is None else visible[spec.id]
                for spec in self._cells.specs}

    def load_cells(self, key, contents):
        """Sets cells of ``key`` as the bridge loads them (the rest keep what they hold): ``contents``, name -> a
        value cell's bytes (None: none) or a map cell's dict; a TTL cell's values are written at the processing
        time now."""
        self._run_keyed(True)
        by_name = {spec.name: spec for spec in self._cells.specs}
        for name, content in contents.items():
            spec = by_name.get(name)
            if spec is None:
                raise ValueError(f"the step declares no cell '{name}' ({self._cell_names()})")
            self._on_own_clock(self._cells.preset, self._key(key), spec.id, content)

    def _cell_names(self):
        return ", ".join(spec.name for spec in self._cells.specs) or "none"

    @staticmethod
    def _key(key):
        if isinstance(key, str):
            return key.encode("utf-8")
        if isinstance(key, (bytes, bytearray, memoryview)):
            return bytes(key)
        raise TypeError(f"a record's key is bytes or text, not {type(key).__name__}")

    def watermark(self, timestamp):
        """A watermark: first the firings of the event-time timers at or before it (in timestamp order), then the
        watermark to every instance in key group order; the outputs of all."""
        def advance(emit):
            self._fire_due(EVENT_TIME, timestamp, emit)
            self._instances.on_watermark(timestamp, emit)
        return self._serve(advance)

    def end_input(self):
        """The end of input (a watermark of the largest long): whatever the steps still held."""
        return self.watermark(MAX_WATERMARK)

    def set_processing_time(self, millis):
        """Processing time is ``millis`` from now on, as a CLOCK input stamps it; the processing-time timers it reaches
        fire then, in timestamp order: their outputs."""
        self._clock = millis
        if not any(timer[2] == PROCESSING_TIME and timer[3] <= millis for timer in self._pending):
            return []
        return self._serve(lambda emit: self._fire_due(PROCESSING_TIME, millis, emit))

    def checkpoint(self):
        """Each instance's state by key group (UNKEYED: not keyed), empty ones left out, as a ``Checkpoint`` (a dict)
        that also holds the keys' cells and pending timers, as Flink's checkpoint does."""
        states = self._on_own_clock(self._instances.snapshot)
        cells = {key: _copied(contents) for key, contents in self._cells.resident.items()}
        return Checkpoint(states, cells, dict(self._pending))

    def close(self):
        self._closed = True
        self._on_own_clock(self._instances.close)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _serve(self, apply):
        if self._failure is not None or self._closed:
            raise RuntimeError("harness closed" if self._closed else f"the step already failed: {self._failure}")
        outputs = []
        try:
            self._on_own_clock(apply, outputs.append)
            return outputs
        except StepFailed as e:
            self._failure = str(e)
            error = e.__cause__
        except Exception as e:
            self._failure = f"{type(e).__name__}: {e}"
            raise
        # Raised here, not in the handler, so the step's exception keeps its own context.
        raise error

    def _on_own_clock(self, call, *args):
        outer = sdk._stamped_millis
        sdk.stamp_clock(self._clock)
        try:
            return call(*args)
        finally:
            sdk.stamp_clock(outer)


def _copied(contents):
    """A key's cells as stored, with maps copied."""
    return [dict(content) if isinstance(content, dict) else content for content in contents]
