"""A session's logic: its steps built from their descriptions and chained, one instance per Flink key group.

A step ``type`` is a built-in step's name or ``module.Class`` (a user segment, found on the worker's
``PYTHONPATH`` or its ``--path``), constructed with the step's ``config`` as keyword arguments; a step without
a type is served by the worker's own segment of the session's id (``WorkerSegments``). User segments have the
prototype's shape; ``UserSegment`` adapts them and checks everything they return.
"""
import base64
import contextlib
import importlib
import io
import json
import os
import pickle
import traceback
from collections.abc import Mapping

from . import steps as builtin
from .sdk import Message

UNKEYED = -1
MAX_WATERMARK = builtin.MAX_WATERMARK
# Unpickling runs code chosen by whoever can write the checkpoint storage: set to "refuse" (the workers'
# --refuse-pickled-state) to keep state only through segments' own snapshot()/restore(bytes).
PICKLED_STATE_ENV = "FLINK_BRIDGE_PICKLED_STATE"
# A window segment's state: this line, then JSON of its instance's state (base64) and its open windows.
_WINDOW_STATE = b"flink-bridge window state 1\n"


def pickled_state_refused():
    return os.environ.get(PICKLED_STATE_ENV) == "refuse"


def _unpickle(name, what, state):
    """The pickled ``state``, unless this worker refuses pickled state."""
    if pickled_state_refused():
        raise ValueError(f"{name}: its checkpointed {what} is pickled, and this worker refuses pickled state "
                         "(--refuse-pickled-state): restore it on a worker that allows it, or give the class "
                         "snapshot() -> bytes and restore(bytes)")
    try:
        return pickle.loads(state)
    except Exception as e:
        raise ValueError(f"{name}: cannot unpickle its {what}: {type(e).__name__}: {e}") from e


class TransportFailed(Exception):
    """The session's data plane failed (the bridge is gone, its ring is corrupt): not the step's doing, so it
    passes through the steps unchanged and ends the session."""


class StepFailed(Exception):
    """A step raised: carries the step's name and type, the exception's type and message, and the last frame
    of its traceback; ``index``, ``step_name``, ``error_class`` and ``message`` say it as an INPUT_FAILED does."""

    def __init__(self, index, step_name, step_type, error):
        frame = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
        where = f" (at {frame.filename}:{frame.lineno} in {frame.name})" if frame else ""
        super().__init__(f"step '{step_name}' ({step_type}) failed: {type(error).__name__}: {error}{where}")
        self.details = "".join(traceback.format_exception(error))
        self.index = index
        self.step_name = step_name
        kind = type(error)
        self.error_class = (kind.__qualname__ if kind.__module__ == "builtins"
                            else f"{kind.__module__}.{kind.__qualname__}")
        self.message = str(error)


class UserSegment(builtin.Step):
    """A segment written for the prototype's worker: ``process(message) -> [Message]`` and optionally
    ``watermark(timestamp) -> [Message]``; its state is ``snapshot()``/``restore(bytes)`` when it has both,
    else the pickled instance."""

    def __init__(self, step_name, step_type, instance):
        self.name = f"segment '{step_name}' ({step_type})"
        self.instance = instance
        self.own_state = callable(getattr(instance, "snapshot", None)) and callable(getattr(instance, "restore", None))
        if not self.own_state and pickled_state_refused():
            raise ValueError(f"{self.name} keeps its state as its pickled instance, which this worker refuses "
                             "(--refuse-pickled-state): give the class snapshot() -> bytes and restore(bytes)")

    def process(self, message, emit):
        outputs = self.instance.process(message)
        if type(outputs) is list:
            checked = self.checked
            for output in outputs:
                emit(checked(output, "process"))
        else:
            self._emit_all(outputs, "process", emit)

    def on_watermark(self, timestamp, emit):
        watermark = getattr(self.instance, "watermark", None)
        if watermark is not None:
            self._emit_all(watermark(timestamp), "watermark", emit)

    def on_timer(self, timestamp, domain, emit):
        on_timer = getattr(self.instance, "on_timer", None)
        if not callable(on_timer):
            super().on_timer(timestamp, domain, emit)
        self._emit_all(on_timer(timestamp, domain), "on_timer", emit)

    def handles_timers(self):
        return callable(getattr(self.instance, "on_timer", None))

    def _emit_all(self, outputs, method, emit):
        if type(outputs) is not list:
            if outputs is None:
                return
            if isinstance(outputs, (str, bytes, Mapping)) or not hasattr(outputs, "__iter__"):
                raise TypeError(f"{self.name}: {method}() returned a {type(outputs).__name__}, not a list of "
                                "messages")
        for output in outputs:
            emit(self.checked(output, method))

    def checked(self, output, method):
        """``output`` as a Message, or a TypeError naming the segment and what is wrong."""
        # The common case first, at the cost of a few type() calls: our own Message with plain field types.
        if (type(output) is Message and type(output.payload) is bytes and type(output.headers) is dict
                and type(output.timestamp) is int and -2 ** 63 <= output.timestamp < 2 ** 63):
            for key, value in output.headers.items():
                if type(key) is not str or type(value) is not str:
                    break
            else:
                return output
        for field in ("payload", "headers", "timestamp"):
            if not hasattr(output, field):
                raise TypeError(f"{self.name}: {method}() returned a {type(output).__name__} without {field}, "
                                "not a message")
        payload, headers, timestamp = output.payload, output.headers, output.timestamp
        if not isinstance(payload, (bytes, bytearray)):
            raise TypeError(f"{self.name}: {method}() returned a message whose payload is a "
                            f"{type(payload).__name__}, not bytes")
        if not isinstance(headers, Mapping):
            raise TypeError(f"{self.name}: {method}() returned a message whose headers are a "
                            f"{type(headers).__name__}, not a dict of strings")
        for key, value in headers.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError(f"{self.name}: {method}() returned a message with header {key!r}: {value!r}; "
                                "header names and values must be strings")
        if not isinstance(timestamp, int) or isinstance(timestamp, bool) or not -2 ** 63 <= timestamp < 2 ** 63:
            raise TypeError(f"{self.name}: {method}() returned a message whose timestamp is {timestamp!r}, "
                            "not milliseconds as an int")
        return Message(bytes(payload), dict(headers), timestamp)

    def snapshot_state(self):
        if self.own_state:
            state = self.instance.snapshot()
            if not isinstance(state, (bytes, bytearray)):
                raise TypeError(f"{self.name}: snapshot() returned a {type(state).__name__}, not bytes")
            return bytes(state)
        try:
            return pickle.dumps(self.instance, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as e:
            raise TypeError(f"{self.name}: its state cannot be pickled ({type(e).__name__}: {e}); give the class "
                            "snapshot() -> bytes and restore(bytes)") from e

    def restore_state(self, state):
        if self.own_state:
            self.instance.restore(state)
        elif state:
            self.instance = _unpickle(self.name, "state", state)

    def close(self):
        close = getattr(self.instance, "close", None)
        if callable(close):
            close()


def build_step(step_name, step_type, config_json, own=None, keyed=False):
    """One step from its description; a ValueError naming the step when it cannot be built.

    ``own``: (label, class) of the worker's own segment that serves a step without a type (see
    ``WorkerSegments``), or None when the session has no such step; ``keyed``: the step is built for a keyed
    session, where a built-in step may keep its per-key state in cells (``running_count``, ``batch``, ``count``)."""
    try:
        config = json.loads(config_json) if config_json else {}
    except ValueError as e:
        raise ValueError(f"step '{step_name}': config is not valid JSON: {e}") from None
    built_in = builtin.BUILT_IN.get(step_type)
    if built_in is not None:
        return built_in(step_name, builtin.StepConfig(step_name, config, keyed))
    if step_type == "":
        if own is None:
            raise ValueError(f"step '{step_name}' has no type and no segment of the worker's own serves it")
        step_type, segment_class = own
    else:
        segment_class = _imported_class(step_name, step_type)
    windowed = isinstance(segment_class, type) and all(
        callable(getattr(segment_class, method, None)) for method in ("add", "trigger"))
    if not isinstance(segment_class, type) or not (windowed or callable(getattr(segment_class, "process", None))):
        raise ValueError(f"step '{step_name}': {step_type} is not a class with a process(message) method, nor a "
                         "window segment with add(message, window_time, window_key) and trigger(window_time, "
                         "window_key)")
    if not isinstance(config, dict):
        raise ValueError(f"step '{step_name}': config must be an object, to pass as keyword arguments")
    window = None
    if windowed:
        window = WindowSpec(step_name, step_type, config.pop("window", None))
    try:
        instance = segment_class(**config)
    except Exception as e:
        raise ValueError(f"step '{step_name}': creating {step_type} failed: {type(e).__name__}: {e}") from e
    return UserSegment(step_name, step_type, instance) if window is None else WindowSegment(
        step_name, step_type, instance, window)


def refuse_unhandled_timers(step_name, step):
    """A ValueError naming the step when ``step`` (built, and declaring timers) has no ``on_timer`` to handle their
    firings; the Rust worker asks it of the Python steps it hosts too."""
    if not step.handles_timers():
        raise ValueError(f"step '{step_name}' declares timers, but has no on_timer(timestamp, domain) to handle their "
                         "firings")


def _imported_class(step_name, step_type):
    """The class ``module.Class`` names, imported from the worker's PYTHONPATH or --path."""
    module_name, dot, class_name = step_type.rpartition(".")
    if not dot or not module_name or not class_name:
        raise ValueError(f"step '{step_name}' has unknown type '{step_type}': built-in types are "
                         f"{', '.join(sorted(builtin.BUILT_IN))}; a user segment is named module.Class")
    return getattr(builtin.imported(step_name, module_name), class_name, None)


class WorkerSegments:
    """The worker's own segments (``--segments module.NAME``), which serve the steps that have no type, as
    the prototype's worker served a sentry_streams pipeline's segments by their index: ``NAME`` is a list
    whose entry N, or a dict whose key N, is the class serving segment N. Imported on first use."""

    def __init__(self, name=None):
        self.name = name
        self._table = None

    def own_for(self, described, segment_id):
        """(label, class) serving segment ``segment_id``'s steps without a type; None when each has a type."""
        untyped = [name for name, step_type, _ in described if step_type == ""]
        if not untyped:
            return None
        if not self.name:
            raise ValueError(f"step '{untyped[0]}' has no type, so it is segment {segment_id} of the worker's own "
                             "segments, but this worker has none: start it with --segments module.NAME (a job "
                             "that spawns it: -Dflink-bridge.worker.segments=module.NAME)")
        table = self.table()
        try:
            return f"{self.name}[{segment_id}]", table[segment_id]
        except (IndexError, KeyError):
            held = (f"entries 0 to {len(table) - 1}" if isinstance(table, (list, tuple))
                    else f"keys {sorted(table)}")
            raise ValueError(f"step '{untyped[0]}' has no type, so it is segment {segment_id} of the worker's own "
                             f"segments, but {self.name} has no segment {segment_id} ({held})") from None

    def table(self):
        """The list or dict ``--segments`` names, imported on the first call."""
        if self._table is None:
            module_name, dot, attribute = self.name.rpartition(".")
            if not dot or not module_name or not attribute:
                raise ValueError(f"--segments {self.name}: expected module.NAME")
            try:
                module = importlib.import_module(module_name)
            except Exception as e:
                raise ValueError(f"--segments {self.name}: cannot import module {module_name} (is it on the "
                                 f"worker's PYTHONPATH or --path?): {type(e).__name__}: {e}") from e
            table = getattr(module, attribute, None)
            if not isinstance(table, (list, tuple, Mapping)):
                raise ValueError(f"--segments {self.name}: expected a list or dict of segment classes by segment "
                                 f"id, found {type(table).__name__}")
            self._table = table
        return self._table


class WindowSpec:
    """How the worker assigns a window segment's windows: tumbling event-time windows of ``size_ms``, per
    key (``key_header`` or ``key_json_field``; one key when neither is given). From the step's
    ``config: {window: {...}}``, which is not passed to the constructor."""

    def __init__(self, step_name, step_type, window):
        if not isinstance(window, dict):
            raise ValueError(f"step '{step_name}': {step_type} is a window segment (add/trigger): its config needs "
                             "window: {size_ms: N} (and key_header or key_json_field to window per key)")
        config = builtin.StepConfig(step_name, window)
        if window.get("size_ms") is None:
            raise config.invalid("window.size_ms", "a whole number >= 1", None)
        self.size_ms = config.positive_long("size_ms", 0)
        self.key = builtin.RecordField.from_config(config, "key_", False)


class WindowSegment(UserSegment):
    """The prototype's window segment: ``add(message, window_time, window_key)`` for each record, into the
    window the worker assigns it (``window_time`` is the window's start), and ``trigger(window_time,
    window_key) -> list of messages`` once the watermark passes the window's end. The open windows are part
    of the state, with the instance's own."""

    def __init__(self, step_name, step_type, instance, window):
        super().__init__(step_name, step_type, instance)
        self.window = window
        self.open = set()

    def process(self, message, emit):
        size = self.window.size_ms
        start = message.timestamp - message.timestamp % size
        key = "" if self.window.key is None else self.window.key.read(message) or ""
        self.instance.add(message, start, key)
        self.open.add((start, key))

    def on_watermark(self, timestamp, emit):
        size = self.window.size_ms
        for start, key in sorted(self.open):
            if start + size > timestamp and timestamp != MAX_WATERMARK:
                break
            self.open.discard((start, key))
            self._emit_all(self.instance.trigger(start, key), "trigger", emit)

    def snapshot_state(self):
        windows = {"instance": base64.b64encode(super().snapshot_state()).decode("ascii"), "open": sorted(self.open)}
        return _WINDOW_STATE + json.dumps(windows).encode()

    def restore_state(self, state):
        if not state:
            return
        if state.startswith(_WINDOW_STATE):
            try:
                windows = json.loads(state[len(_WINDOW_STATE):])
                own = base64.b64decode(windows["instance"], validate=True)
                open_windows = [(int(start), str(key)) for start, key in windows["open"]]
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"{self.name}: its window state is corrupt: {type(e).__name__}: {e}") from e
        else:
            # Checkpoints taken before the windows were written as JSON hold them pickled.
            own, open_windows = _unpickle(self.name, "windows", state)
        super().restore_state(own)
        self.open = set(open_windows)


class SegmentChain:
    """The steps of one segment run as one: the outputs of step k are the inputs of step k+1, and a watermark
    passes the steps in order, so what step k emits on it reaches step k+1 before the watermark does."""

    def __init__(self, described, own=None, cells=None, keyed=False, timers=None):
        """``described``: (name, type, config JSON) of each step, in order; ``own``: what serves a step without
        a type (``WorkerSegments.own_for``); ``cells``: the session's ``CellStore``, which takes the cells each
        step declares while it is built (None: no cells, as in the prototype's service); ``keyed``: the session is
        keyed (``OpenSessionRequest.keyed``; it needs ``cells``), which the built-in steps are told; ``timers``: the
        session's ``TimerStore``, which learns which steps declare timers (None: none may, as without cells)."""
        if not described:
            raise ValueError("a segment needs at least one step")
        if keyed and cells is None:
            raise ValueError("a keyed segment needs the session's cells")
        self.steps = []
        self._cells = cells
        self._timers = timers
        try:
            for index, (name, step_type, config_json) in enumerate(described):
                if cells is None:
                    self.steps.append(build_step(name, step_type, config_json, own))
                    continue
                with self._declaring(index, name):
                    self.steps.append(build_step(name, step_type, config_json, own, keyed))
                if timers is not None and index in timers.steps:
                    refuse_unhandled_timers(name, self.steps[-1])
        except BaseException:
            self.close()
            raise
        self.names = [(name, step_type or own[0]) for name, step_type, _ in described]
        self._downstream = None
        # _emitters[k] takes what step k emits: step k+1's input, or the chain's output after the last step.
        self._emitters = [self._feeder(index + 1) for index in range(len(self.steps) - 1)] + [self._out]
        self._first = self.steps[0]
        self._single = len(self.steps) == 1

    def _declaring(self, index, name, restoring=False):
        """The cells and timers declared while step ``index`` is built (or its pickled instance restored) are its."""
        declaring = contextlib.ExitStack()
        declaring.enter_context(self._cells.declaring(index, name, restoring))
        if self._timers is not None:
            declaring.enter_context(self._timers.declaring(index, name, restoring))
        return declaring

    def _out(self, message):
        self._downstream(message)

    def _feeder(self, index):
        step = self.steps[index]

        def emit(message):
            self._call(index, step.process, message, self._emitters[index])
        return emit

    def _call(self, index, method, argument, emit):
        try:
            method(argument, emit)
        except (StepFailed, TransportFailed):
            raise
        except Exception as e:
            raise StepFailed(index, *self.names[index], e) from e

    def process(self, message, emit):
        if self._single:
            # The common one-step segment: its outputs go straight out.
            try:
                self._first.process(message, emit)
            except (StepFailed, TransportFailed):
                raise
            except Exception as e:
                raise StepFailed(0, *self.names[0], e) from e
            return
        self._downstream = emit
        self._call(0, self._first.process, message, self._emitters[0])

    def on_watermark(self, timestamp, emit):
        self._downstream = emit
        for index, step in enumerate(self.steps):
            self._call(index, step.on_watermark, timestamp, self._emitters[index])

    def on_timer(self, firing, emit):
        """A timer fires: ``firing`` is (step index, timestamp, domain); that step's ``on_timer`` runs, and what it
        emits goes through the steps after it."""
        index, timestamp, domain = firing
        self._downstream = emit
        step = self.steps[index]
        self._call(index, lambda _, out: step.on_timer(timestamp, domain, out), None, self._emitters[index])

    def snapshot_state(self):
        """The steps' states, each behind its length, behind the number of steps; empty when none holds any
        (the Java worker's encoding)."""
        states = [step.snapshot_state() for step in self.steps]
        if not any(states):
            return b""
        out = io.BytesIO()
        out.write(builtin._INT.pack(len(states)))
        for state in states:
            builtin.write_bytes(out, state)
        return out.getvalue()

    def restore_state(self, state):
        if not state:
            return
        reader = builtin.StateReader(state, "segment")
        count = reader.int()
        if count != len(self.steps):
            raise ValueError(f"cannot restore the segment's state: it holds {count} step states, but the segment "
                             f"has {len(self.steps)} steps")
        for index, step in enumerate(self.steps):
            if self._cells is None:
                step.restore_state(reader.bytes("step state"))
                continue
            # A pickled instance's cells come back as their declarations, bound again to this session's cells; a
            # step restoring its own bytes declares none and keeps the cells it declared when it was built.
            with self._declaring(index, self.names[index][0], restoring=True):
                step.restore_state(reader.bytes("step state"))
        if reader.remaining():
            raise ValueError(f"cannot restore the segment's state: {reader.remaining()} bytes after the last "
                             "step state")

    def checkpoint_finished(self, checkpoint_id, completed):
        for step in self.steps:
            (step.checkpoint_completed if completed else step.checkpoint_aborted)(checkpoint_id)

    def close(self):
        first = None
        for step in self.steps:
            try:
                step.close()
            except Exception as e:
                first = first or e
        if first is not None:
            raise first


class KeyGroupInstances:
    """One instance of the segment per Flink key group the session has seen (one in all for a stream that is
    not keyed), so each instance's state is exactly its key group's and a rescale moves it with the keys.
    Watermarks reach every instance in key group order."""

    def __init__(self, factory):
        self.factory = factory
        self.instances = {}

    @classmethod
    def of(cls, described, own=None, cells=None, keyed=False, timers=None):
        """The instances of a segment of ``described`` steps (see ``SegmentChain``, which takes ``keyed`` too),
        built once now so that steps that cannot be built refuse the session, and the cells and timers they declare
        are known (in ``cells``, a ``CellStore``, and ``timers``, a ``TimerStore``, when given); its instances come
        per key group later, declaring the same."""
        SegmentChain(described, own, cells, keyed, timers).close()
        if cells is not None:
            cells.seal()
        if timers is not None:
            timers.seal()
        return cls(lambda: SegmentChain(described, own, cells, keyed, timers))

    def for_key_group(self, key_group):
        instance = self.instances.get(key_group)
        if instance is None:
            instance = self.instances[key_group] = self.factory()
        return instance

    def on_watermark(self, timestamp, emit):
        for key_group in sorted(self.instances):
            self.instances[key_group].on_watermark(timestamp, emit)

    def snapshot(self):
        """Each instance's state by key group (UNKEYED for a stream that is not keyed); empty ones left out."""
        states = {}
        for key_group in sorted(self.instances):
            state = self.instances[key_group].snapshot_state()
            if state:
                states[key_group] = state
        return states

    def restore(self, states):
        for key_group in sorted(states):
            if key_group in self.instances:
                raise ValueError(f"key group {key_group} already holds state")
            self.for_key_group(key_group).restore_state(states[key_group])

    def checkpoint_finished(self, checkpoint_id, completed):
        for instance in self.instances.values():
            instance.checkpoint_finished(checkpoint_id, completed)

    def close(self):
        for instance in self.instances.values():
            instance.close()
        self.instances.clear()
