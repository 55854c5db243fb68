"""The built-in steps, with the same configuration, output and state encoding as the Java worker's
(worker/src/main/java/org/flinkbridge/worker/steps), so one pipeline file gives the same output with either
worker, and a savepoint taken with one restores in the other.

A step here has the worker's internal shape: ``process(message, emit)``, ``on_watermark(timestamp, emit)``,
``snapshot_state() -> bytes``, ``restore_state(bytes)``; user segments are adapted to it in ``segments``.
"""
import importlib
import io
import json
import math
import struct

from .sdk import EVENT_TIME, Message, current_time_millis, map_cell, timers, value_cell

MAX_WATERMARK = 2 ** 63 - 1
BATCH_SIZE_HEADER = "batch_size"
# 2: strings as an int length and UTF-8 bytes (docs/steps.md), as the Java worker's StateStrings writes them.
STATE_VERSION = 2

_INT = struct.Struct(">i")
_LONG = struct.Struct(">q")
# running_count's count in its cell (a keyed session): an i64 little-endian.
_CELL_COUNT = struct.Struct("<q")
# window's aggregates and fired_until in its cells: i64 little-endian.
_CELL_LONG = _CELL_COUNT
MIN_LONG, MAX_LONG = -2 ** 63, 2 ** 63 - 1


def _json_bytes(value):
    """Compact JSON, non-ASCII left as UTF-8: what Jackson writes."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def imported(step_name, module_name):
    """The module ``module_name``, imported from the worker's PYTHONPATH or --path: where a user step's or a user
    aggregate's class is looked for."""
    try:
        return importlib.import_module(module_name)
    except Exception as e:
        raise ValueError(f"step '{step_name}': cannot import module {module_name} (is it on the worker's "
                         f"PYTHONPATH or --path?): {type(e).__name__}: {e}") from e


class StepConfig:
    """Typed reads of a step's config, with errors naming the step, the key and what is expected; ``keyed``: the
    session the step is built for is keyed (``OpenSessionRequest.keyed``), so a step may keep per-key state in cells
    (docs/protocol.md, "Cells")."""

    def __init__(self, step_name, config, keyed=False):
        self.step_name = step_name
        self.config = config
        self.keyed = keyed
        if not isinstance(config, dict):
            raise self.invalid("config", "an object", config)

    def string(self, key, fallback=None):
        return self.of_type(key, fallback, str, "a string")

    def positive_long(self, key, fallback):
        value = self.config.get(key)
        if value is None:
            return fallback
        whole = isinstance(value, int) and not isinstance(value, bool) or isinstance(value, float) and value.is_integer()
        if not whole or value < 1 or value > 2 ** 63 - 1:
            raise self.invalid(key, "a whole number >= 1", value)
        return int(value)

    def non_negative_long(self, key, fallback):
        value = self.config.get(key)
        if value is None:
            return fallback
        whole = isinstance(value, int) and not isinstance(value, bool) or isinstance(value, float) and value.is_integer()
        if not whole or value < 0 or value > MAX_LONG:
            raise self.invalid(key, "a whole number >= 0", value)
        return int(value)

    def boolean(self, key, fallback):
        return self.of_type(key, fallback, bool, "true or false")

    def of_type(self, key, fallback, kind, expected):
        """The value at key, fallback when missing or null; a value not of kind is invalid, named as expected."""
        value = self.config.get(key)
        if value is None:
            return fallback
        if not isinstance(value, kind):
            raise self.invalid(key, expected, value)
        return value

    def invalid(self, key, expected, found):
        return ValueError(f"step '{self.step_name}': config {key} must be {expected}, not {json.dumps(found)}")


class RecordField:
    """A value read from a record: a header (``<prefix>header``) or a top-level JSON field
    (``<prefix>json_field``) as its text; None when missing or when the payload is no JSON object."""

    def __init__(self, header, json_field):
        self.header = header
        self.json_field = json_field

    @staticmethod
    def from_config(config, prefix, required):
        header = config.string(prefix + "header")
        json_field = config.string(prefix + "json_field")
        if header is not None and json_field is not None:
            raise ValueError(f"step '{config.step_name}': give {prefix}header or {prefix}json_field, not both")
        if header is None and json_field is None:
            if required:
                raise ValueError(f"step '{config.step_name}': config needs {prefix}header or {prefix}json_field")
            return None
        return RecordField(header, json_field)

    def read(self, message):
        if self.header is not None:
            return message.headers.get(self.header)
        return top_level_scalar(message.payload, self.json_field)


def top_level_scalar(payload, field):
    """A top-level field's text as written (numbers keep their spelling), if it is a scalar and not null."""
    try:
        document = json.loads(payload, parse_int=str, parse_float=str, parse_constant=str)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(document, dict):
        return None
    value = document.get(field)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else None


class Step:
    """The defaults: no watermark output, no timers, no state, nothing to do on checkpoints or close."""

    def on_watermark(self, timestamp, emit):
        pass

    def on_timer(self, timestamp, domain, emit):
        """A timer the step set for the current key fires (``flink_bridge.timers``)."""
        raise TypeError(f"its {domain.name.lower().replace('_', '-')} timer at {timestamp} fired, but the step has "
                        "no on_timer")

    def handles_timers(self):
        """Whether the step has an ``on_timer``: a step that declares timers needs one."""
        return type(self).on_timer is not Step.on_timer

    def snapshot_state(self):
        return b""

    def restore_state(self, state):
        pass

    def checkpoint_completed(self, checkpoint_id):
        pass

    def checkpoint_aborted(self, checkpoint_id):
        pass

    def close(self):
        pass


class AppendField(Step):
    """``append_field``: adds one field (``field``, default "processed") with ``value`` (default true) to a
    JSON object payload."""

    def __init__(self, step_name, config):
        self.step_name = step_name
        self.field = config.string("field", "processed")
        self.value = config.config.get("value", True)

    def process(self, message, emit):
        try:
            document = json.loads(message.payload)
        except ValueError as e:
            raise ValueError(f"step '{self.step_name}' (append_field): the payload is not JSON: {e}") from None
        if not isinstance(document, dict):
            raise ValueError(f"step '{self.step_name}' (append_field): the payload is not a JSON object but "
                             f"{type(document).__name__}")
        document[self.field] = self.value
        emit(message.with_payload(_json_bytes(document)))


class Filter(Step):
    """``filter``: keeps the records whose field equals ``equals`` (``negate: true`` keeps the others)."""

    def __init__(self, step_name, config):
        self.field = RecordField.from_config(config, "", True)
        self.expected = config.string("equals")
        if self.expected is None:
            raise config.invalid("equals", "a string", None)
        self.negate = config.boolean("negate", False)

    def process(self, message, emit):
        if (self.field.read(message) == self.expected) != self.negate:
            emit(message)


class Batch(Step):
    """``batch``: a JSON array of up to ``max_count`` payloads with a ``batch_size`` header, closed at
    ``max_count``, when a record or watermark comes after it has been open ``max_wait_ms``, and at the end of
    input.

    In a session that is not keyed the open batch is the whole-instance state. In a keyed session (protocol 6) each
    key has its own open batch in the value cell ``batch`` (encoded as the whole-instance state encodes one batch),
    closed by timers, on a quiet stream too: the batch's first record sets a processing-time timer at its clock +
    ``max_wait_ms`` and an event-time timer at the largest long (the end of input); either firing emits the key's
    batch and deletes the other, as ``max_count`` deletes both. The instance then keeps no state of its own, and
    watermarks do nothing."""

    def __init__(self, step_name, config):
        self.step_name = step_name
        self.max_count = config.positive_long("max_count", 100)
        if self.max_count > 1_000_000:
            raise config.invalid("max_count", "at most 1000000", self.max_count)
        self.max_wait_ms = config.positive_long("max_wait_ms", 1000)
        self.batch = []
        self.opened_at = 0
        self.cell = value_cell("batch") if config.keyed else None
        self.timers = timers() if config.keyed else None

    def process(self, message, emit):
        if self.cell is not None:
            self._process_keyed(message, emit)
            return
        if self.batch and self._aged():
            self._emit(emit)
        if not self.batch:
            self.opened_at = current_time_millis()
        self.batch.append(message)
        if len(self.batch) >= self.max_count:
            self._emit(emit)

    def on_watermark(self, timestamp, emit):
        # In a keyed session the timers close the batches.
        if self.cell is None and self.batch and (timestamp == MAX_WATERMARK or self._aged()):
            self._emit(emit)

    def _aged(self):
        return current_time_millis() - self.opened_at >= self.max_wait_ms

    def _process_keyed(self, message, emit):
        opened_at, batch = self._read_cell()
        if not batch:
            opened_at = current_time_millis()
            self.timers.set_processing_time(self._closes_at(opened_at))
            self.timers.set_event_time(MAX_WATERMARK)
        batch.append(message)
        if len(batch) >= self.max_count:
            self.cell.clear()
            self.timers.delete_processing_time(self._closes_at(opened_at))
            self.timers.delete_event_time(MAX_WATERMARK)
            emit(self._closed(batch))
        else:
            self.cell.set(self._encoded(opened_at, batch))

    def on_timer(self, timestamp, domain, emit):
        if self.cell is None:
            super().on_timer(timestamp, domain, emit)
        opened_at, batch = self._read_cell()
        if not batch:
            return
        self.cell.clear()
        if domain == EVENT_TIME:
            self.timers.delete_processing_time(self._closes_at(opened_at))
        else:
            self.timers.delete_event_time(MAX_WATERMARK)
        emit(self._closed(batch))

    def _closes_at(self, opened_at):
        """The processing time at which a batch opened at ``opened_at`` closes: its timer's timestamp."""
        return min(opened_at + self.max_wait_ms, MAX_LONG)

    def _read_cell(self):
        """The current key's open batch: (opened at, records), no records when none is open."""
        stored = self.cell.get()
        if stored is None:
            return 0, []
        return self._decoded(stored, f"step '{self.step_name}' (batch): cell 'batch'")

    def _emit(self, emit):
        batch = self.batch
        self.batch = []
        emit(self._closed(batch))

    @staticmethod
    def _closed(batch):
        """The output of a closed batch."""
        items = []
        for message in batch:
            try:
                items.append(json.loads(message.payload))
            except ValueError:
                items.append(message.payload.decode("utf-8", "replace"))
        headers = dict(batch[0].headers)
        headers[BATCH_SIZE_HEADER] = str(len(batch))
        return Message(_json_bytes(items), headers, batch[-1].timestamp)

    def snapshot_state(self):
        if self.cell is not None:
            return b""
        return self._encoded(self.opened_at, self.batch)

    def restore_state(self, state):
        self.batch = []
        if not state:
            return
        opened_at, batch = self._decoded(state, "batch")
        if batch and self.cell is not None:
            raise _whole_instance_refused(self.step_name, "batch", f"a whole-instance open batch of {len(batch)} "
                                          "record(s)", "each key's batch in a cell since protocol 6", "records")
        self.opened_at = opened_at
        self.batch = batch

    @staticmethod
    def _encoded(opened_at, batch):
        """One batch as the state encodes it: version, opened-at time, count, then each record."""
        out = io.BytesIO()
        out.write(bytes([STATE_VERSION]))
        out.write(_LONG.pack(opened_at))
        out.write(_INT.pack(len(batch)))
        for message in batch:
            out.write(_LONG.pack(message.timestamp))
            out.write(_INT.pack(len(message.headers)))
            for key, value in message.headers.items():
                write_string(out, key)
                write_string(out, value)
            write_bytes(out, message.payload)
        return out.getvalue()

    def _decoded(self, state, what):
        """(opened at, records) of one batch as ``_encoded`` writes it; ``what``: the state's name in errors."""
        reader = StateReader(state, what)
        version = reader.byte()
        if version != STATE_VERSION:
            raise ValueError(f"{what} state version {version} is not {STATE_VERSION}")
        opened_at = reader.long()
        size = reader.int()
        if size < 0 or size > self.max_count:
            raise ValueError(f"{what} state holds {size} records; max_count is {self.max_count}")
        batch = []
        for _ in range(size):
            timestamp = reader.long()
            headers = {}
            for _ in range(reader.int()):
                key = reader.string()
                headers[key] = reader.string()
            batch.append(Message(reader.bytes("payload"), headers, timestamp))
        return opened_at, batch


class RunningCount(Step):
    """``running_count``: per key, emits ``{"key": K, "count": N}`` (with a ``key`` header) for every record,
    N counting this one.

    In a session that is not keyed the counts are the whole-instance state. In a keyed session (protocol 5) they
    live in one map cell, ``counts`` (no TTL), of the session's key: the entry's key is K as UTF-8, its value the
    count as an i64 little-endian; the instance then keeps no state of its own, and refuses to restore the
    whole-instance counts of a checkpoint taken before."""

    def __init__(self, step_name, config):
        self.step_name = step_name
        self.key = RecordField.from_config(config, "key_", True)
        self.counts = {}
        self.cell = map_cell("counts") if config.keyed else None

    def process(self, message, emit):
        key = self.key.read(message)
        if key is None:
            raise ValueError("the record has no key to count by")
        if self.cell is None:
            count = self.counts.get(key, 0) + 1
            self.counts[key] = count
        else:
            count = self._count_in_cell(key)
        emit(Message(_json_bytes({"key": key, "count": count}), {"key": key}, message.timestamp))

    def _count_in_cell(self, key):
        # An unpaired surrogate (a JSON "\ud800") becomes "?", as Java's String.getBytes(UTF_8) writes it.
        entry_key = key.encode("utf-8", "replace")
        stored = self.cell.get(entry_key)
        if stored is None:
            count = 1
        elif len(stored) != _CELL_COUNT.size:
            raise ValueError(f"step '{self.step_name}' (running_count): the count of key {json.dumps(key)} in its "
                             f"cell 'counts' is {len(stored)} bytes, not an {_CELL_COUNT.size}-byte i64")
        else:
            count = _CELL_COUNT.unpack(stored)[0] + 1
        self.cell.put(entry_key, _CELL_COUNT.pack(count))
        return count

    def snapshot_state(self):
        return write_counts(self.counts, write_string) if self.counts else b""

    def restore_state(self, state):
        counts = read_counts(state, StateReader.string, "running_count")
        if counts and self.cell is not None:
            raise _whole_instance_refused(self.step_name, "running_count", f"whole-instance counts of {len(counts)} "
                                          "key(s)", "its counts in cells since protocol 5", "counts")
        self.counts = counts


class Count(Step):
    """``count``: per key, counts records in tumbling event-time windows of ``window_ms`` and emits
    ``{"key","window_start","window_end","count"}`` once the watermark passes a window's end.

    In a session that is not keyed the open windows are the whole-instance state, emitted by watermarks. In a keyed
    session (protocol 6) they run on ``window``'s cells and timers (``Window.counting``): map cell ``windows``, entry
    key = the window start (i64 big-endian) then the key (UTF-8), value = the count (i64 little-endian), and an
    event-time timer at each window's end - 1; the instance then keeps no state of its own, and refuses to restore the
    whole-instance windows of a checkpoint taken before."""

    def __init__(self, step_name, config):
        if config.config.get("window_ms") is None:
            raise config.invalid("window_ms", "a whole number >= 1", None)
        self.step_name = step_name
        self.window_ms = config.positive_long("window_ms", 0)
        self.key = RecordField.from_config(config, "key_", False)
        self.counts = {}
        self.cells = Window.counting(step_name, self.window_ms, self.key) if config.keyed else None

    def process(self, message, emit):
        if self.cells is not None:
            self.cells.process(message, emit)
            return
        key = "" if self.key is None else self.key.read(message)
        start = message.timestamp - message.timestamp % self.window_ms
        window = (start, "" if key is None else key)
        self.counts[window] = self.counts.get(window, 0) + 1

    def on_timer(self, timestamp, domain, emit):
        if self.cells is None:
            super().on_timer(timestamp, domain, emit)
        self.cells.on_timer(timestamp, domain, emit)

    def on_watermark(self, timestamp, emit):
        # In a keyed session the timers fire the windows.
        for window in sorted(self.counts):
            start, key = window
            end = start + self.window_ms
            if end > timestamp and timestamp != MAX_WATERMARK:
                break
            count = self.counts.pop(window)
            emit(Message(_json_bytes({"key": key, "window_start": start, "window_end": end, "count": count}),
                         {"key": key}, end - 1))

    def snapshot_state(self):
        if self.cells is not None:
            return b""

        def write_window(out, window):
            out.write(_LONG.pack(window[0]))
            write_string(out, window[1])
        # In window then key order, as the Java worker's TreeMap and the Rust worker's BTreeMap write them.
        return write_counts(dict(sorted(self.counts.items())), write_window)

    def restore_state(self, state):
        counts = read_counts(state, lambda reader: (reader.long(), reader.string()), "count")
        if counts and self.cells is not None:
            raise _whole_instance_refused(self.step_name, "count", f"whole-instance open windows of {len(counts)} "
                                          "(window, key) pair(s)", "its windows in cells (map cell 'windows') since "
                                          "protocol 6", "counts")
        self.counts = counts


class Window(Step):
    """``window``: per key, tumbling (``slide_ms`` = ``size_ms``) or sliding event-time windows of ``size_ms`` with an
    aggregate (``count``, or the ``sum``, ``min`` or ``max`` of a top-level JSON integer ``field``), on cells and
    timers, so a keyed segment only (docs/steps.md).

    Each record adds to every window ``[start, start + size_ms)`` holding its timestamp (``start`` a multiple of
    ``slide_ms``) and sets an event-time timer at ``end - 1 + allowed_lateness_ms``; the firing emits each of the
    session key's windows ending there, ``{"key","window_start","window_end","<aggregate>"}`` in order of their entry
    keys, removes them and records the firing's timestamp in ``fired_until``. A record whose every window has fired is
    late: emitted as it came, with the header ``late`` = the step's name.

    State, all in cells: map cell ``windows``, entry key = the window's start (i64 big-endian) then K (UTF-8), value =
    the aggregate (i64 little-endian); value cell ``fired_until`` (i64 little-endian).

    A user aggregate (``aggregate`` = ``module.Class``, see ``UserAggregate``) keeps an accumulator per pane instead,
    the slice of gcd(``size_ms``, ``slide_ms``) ms a record falls in, so each record is added once: entry key = the
    pane's start (i64 big-endian) then K, value = the accumulator. A window fires with its panes' accumulators merged in
    pane order (one pane: its accumulator as it is), given to ``result``, in the output field ``result``; a pane is
    removed once the last window holding it fired.

    ``count`` runs on it in a keyed session (``Window.counting``): tumbling windows counting records, K optional, no
    late records and so no ``fired_until``."""

    AGGREGATES = ("count", "sum", "min", "max")
    # The step's type, as its errors name it: window, or count (``counting``).
    step_type = "window"

    def __init__(self, step_name, config):
        self.step_name = step_name
        self.key = RecordField.from_config(config, "key_", True)
        if config.config.get("size_ms") is None:
            raise config.invalid("size_ms", "a whole number >= 1", None)
        self.size_ms = config.positive_long("size_ms", 0)
        self.slide_ms = config.positive_long("slide_ms", self.size_ms)
        if self.slide_ms > self.size_ms:
            raise ValueError(f"step '{self.step_name}': config slide_ms must be at most size_ms ({self.size_ms}), "
                             f"not {json.dumps(config.config.get('slide_ms'))}")
        self.lateness_ms = config.non_negative_long("allowed_lateness_ms", 0)
        self.aggregate = config.string("aggregate", "count")
        # The user aggregate, when the aggregate is module.Class; None for a built-in one.
        self.user = None
        if "." in self.aggregate:
            if config.config.get("field") is not None:
                raise ValueError(f"step '{self.step_name}': config field is not used with a user aggregate "
                                 f"({self.aggregate}), whose add() is given the whole record")
            self.pane_ms = math.gcd(self.size_ms, self.slide_ms)
            self.user = UserAggregate(step_name, self.aggregate)
            self.aggregate, self.field = "result", None
        elif self.aggregate not in self.AGGREGATES:
            raise config.invalid("aggregate", "one of count, sum, min, max or a user class (a name with a dot)",
                                 self.aggregate)
        else:
            self.field = config.string("field")
            if self.aggregate != "count" and self.field is None:
                raise ValueError(f"step '{self.step_name}': config field is required for aggregate {self.aggregate}")
        self.windows = map_cell("windows")
        # None for count, which has no late records: a record adds to its window whether or not it fired.
        self.fired_until = value_cell("fired_until")
        self.timers = timers()

    @classmethod
    def counting(cls, step_name, size_ms, key):
        """The windows of ``count`` in a keyed session: tumbling, of ``size_ms``, counting records, K the value of
        ``key`` ("" when it is None or the record has none), no ``fired_until`` and no late records. A record behind
        the watermark adds to its window (again, if it fired) and sets its timer, which the bridge fires at the next
        watermark: what count does with its whole-instance windows."""
        windows = cls.__new__(cls)
        windows.step_name, windows.step_type, windows.key = step_name, "count", key
        windows.size_ms = windows.slide_ms = size_ms
        windows.lateness_ms, windows.aggregate, windows.field, windows.user = 0, "count", None, None
        windows.windows, windows.fired_until, windows.timers = map_cell("windows"), None, timers()
        return windows

    def process(self, message, emit):
        key = None if self.key is None else self.key.read(message)
        if key is None and self.fired_until is not None:
            raise ValueError("the record has no key to window by")
        if key is None:
            key = ""  # count's: no key configured, or the record has none
        value = None if self.aggregate == "count" or self.user is not None else self._value(message.payload)
        timestamp = message.timestamp
        fired = None if self.fired_until is None else self.fired_until.get()
        fired_until = None if fired is None else self._long(fired, "fired_until", key)
        size, slide, lateness = self.size_ms, self.slide_ms, self.lateness_ms
        # The windows holding the timestamp: the last starts at or before it, the first is the earliest whose end is
        # after it.
        last = timestamp - timestamp % slide
        open_windows = []
        for start in range(last - (size - 1) // slide * slide, last + 1, slide):
            if start + size <= timestamp:
                continue
            fires_at = start + size - 1 + lateness
            if start < MIN_LONG or fires_at > MAX_LONG:
                raise ValueError(f"the window [{start}, {start + size}) of timestamp {timestamp} fires at {fires_at}, "
                                 "past the timestamps of 64 bits")
            if fired_until is None or fires_at > fired_until:
                open_windows.append((start, fires_at))
        if not open_windows:
            emit(Message(message.payload, {**message.headers, "late": self.step_name}, timestamp))
            return
        name = key.encode("utf-8", "replace")
        if self.user is not None:
            entry_key = _LONG.pack(timestamp - timestamp % self.pane_ms) + name
            self.windows.put(entry_key, self.user.add(self.windows.get(entry_key), message))
            for _, fires_at in open_windows:
                self.timers.set_event_time(fires_at)
            return
        for start, fires_at in open_windows:
            entry_key = _LONG.pack(start) + name
            stored = self.windows.get(entry_key)
            if stored is None:
                aggregate = 1 if value is None else value
            else:
                aggregate = self._combined(self._long(stored, "windows", key), value, start, key)
            self.windows.put(entry_key, _CELL_LONG.pack(aggregate))
            self.timers.set_event_time(fires_at)

    def _value(self, payload):
        """The record's ``field``: a JSON integer that fits 64 bits."""
        try:
            document = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(f"the payload is not JSON, so it has no field {json.dumps(self.field)}: {e}") from None
        if not isinstance(document, dict):
            raise ValueError(f"the payload is not a JSON object, so it has no field {json.dumps(self.field)}")
        if self.field not in document:
            raise ValueError(f"the record has no field {json.dumps(self.field)} to {self.aggregate}")
        value = document[self.field]
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"field {json.dumps(self.field)} is {json.dumps(value)}, not an integer")
        if not MIN_LONG <= value <= MAX_LONG:
            raise ValueError(f"field {json.dumps(self.field)} is {value}, which does not fit 64 bits")
        return value

    def _combined(self, aggregate, value, start, key):
        if value is None:
            combined = aggregate + 1
        elif self.aggregate == "sum":
            combined = aggregate + value
        else:
            return min(aggregate, value) if self.aggregate == "min" else max(aggregate, value)
        if combined > MAX_LONG or combined < MIN_LONG:
            raise ValueError(f"the {self.aggregate} of window [{start}, {start + self.size_ms}) of key "
                             f"{json.dumps(key)} overflows 64 bits")
        return combined

    def _long(self, stored, cell, key):
        if len(stored) != _CELL_LONG.size:
            raise ValueError(f"step '{self.step_name}' ({self.step_type}): cell '{cell}' of key {json.dumps(key)} "
                             f"holds {len(stored)} bytes, not an {_CELL_LONG.size}-byte i64")
        return _CELL_LONG.unpack(stored)[0]

    def on_timer(self, timestamp, domain, emit):
        if domain != EVENT_TIME:
            raise ValueError(f"a processing-time timer at {timestamp} fired, but {self.step_type} sets event-time "
                             "timers only")
        start = timestamp + 1 - self.lateness_ms - self.size_ms
        end = start + self.size_ms
        fired = []
        if self.user is not None:
            self._fire_panes(start, timestamp, emit)
        elif MIN_LONG <= start <= MAX_LONG:
            prefix = _LONG.pack(start)
            fired = sorted((entry_key, stored) for entry_key, stored in self.windows.items()
                           if entry_key[:8] == prefix and len(entry_key) >= 8)
        for entry_key, stored in fired:
            key = entry_key[8:].decode("utf-8", "replace")
            aggregate = self._long(stored, "windows", key)
            self.windows.remove(entry_key)
            emit(Message(_json_bytes({"key": key, "window_start": start, "window_end": end,
                                      self.aggregate: aggregate}), {"key": key}, end - 1))
        if self.fired_until is not None:
            self.fired_until.set(_CELL_LONG.pack(timestamp))

    def _fire_panes(self, start, timestamp, emit):
        """A user aggregate's firing of the windows starting at ``start``: for each K with a pane in it (in order of
        K's bytes), the result of its panes' accumulators merged in pane order; then the panes whose last window has
        fired are removed."""
        size, slide, end = self.size_ms, self.slide_ms, start + self.size_ms
        panes = {}  # K's bytes -> [(pane start, accumulator)], in pane order
        spent = []
        for entry_key, stored in self.windows.items():
            if len(entry_key) < 8:
                continue
            pane = _LONG.unpack(entry_key[:8])[0]
            if start % slide == 0 and start <= pane < end:
                panes.setdefault(entry_key[8:], []).append((pane, stored))
            # The last window holding the pane starts at the pane's start rounded down to a multiple of slide.
            if pane - pane % slide + size - 1 + self.lateness_ms <= timestamp:
                spent.append(entry_key)
        for name in sorted(panes):
            accumulators = [accumulator for _, accumulator in sorted(panes[name])]
            merged = accumulators[0]
            for accumulator in accumulators[1:]:
                merged = self.user.merge(merged, accumulator)
            result = self.user.result_json(merged)
            key = name.decode("utf-8", "replace")
            # The window's fields as the built-in aggregates write them, then the result's JSON as it was written.
            payload = _json_bytes({"key": key, "window_start": start, "window_end": end})[:-1]
            emit(Message(payload + b',"result":' + result.encode("utf-8") + b"}", {"key": key}, end - 1))
        for entry_key in spent:
            self.windows.remove(entry_key)


class UserAggregate:
    """A ``window`` step's user aggregate ``module.Class`` (docs/steps.md), imported as a user step is and made with no
    arguments: ``add(accumulator, record) -> accumulator`` (``accumulator`` None for a pane's first record, ``record``
    a Message), ``merge(a, b) -> accumulator`` and ``result(accumulator) -> value``, the accumulators bytes (see
    ``flink_bridge.sdk.WindowAggregate``). Its methods here check what the class's return and name the step and the
    class when one raises or returns what it may not; the Rust worker hosts it too, so its errors are the same there."""

    METHODS = ("add", "merge", "result")

    def __init__(self, step_name, class_name):
        self.named = f"step '{step_name}': aggregate {class_name}"
        module_name, _, name = class_name.rpartition(".")
        if not module_name or not name:
            raise ValueError(f"step '{step_name}': config aggregate {json.dumps(class_name)} names no class: a user "
                             "aggregate is module.Class")
        found = getattr(imported(step_name, module_name), name, None)
        if not isinstance(found, type):
            raise ValueError(f"{self.named}: module {module_name} has no class {name}")
        missing = [method for method in self.METHODS if not callable(getattr(found, method, None))]
        if missing:
            raise ValueError(f"{self.named} has no method {', '.join(missing)}: a window aggregate has "
                             "add(accumulator, record), merge(a, b) and result(accumulator)")
        try:
            instance = found()
        except Exception as e:
            raise ValueError(f"step '{step_name}': creating aggregate {class_name} failed: {type(e).__name__}: "
                             f"{e}") from e
        self._add, self._merge, self._result = instance.add, instance.merge, instance.result

    def add(self, accumulator, message):
        return self._accumulator(self._called("add", self._add, accumulator, message), "add")

    def merge(self, a, b):
        return self._accumulator(self._called("merge", self._merge, a, b), "merge")

    def result_json(self, accumulator):
        """The result of the accumulator, as compact JSON text (non-ASCII left as it is, as Jackson writes it)."""
        value = self._called("result", self._result, accumulator)
        try:
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{self.named}: result() returned a {type(value).__name__}, which cannot be written as "
                             f"JSON: {e}") from None

    def _called(self, method, function, *arguments):
        """What the class's ``method`` returns; its exception fails as a ValueError naming the step and the class."""
        try:
            return function(*arguments)
        except Exception as e:
            raise ValueError(f"{self.named} failed in {method}(): {type(e).__name__}: {e}") from e

    def _accumulator(self, returned, method):
        if type(returned) is bytes:
            return returned
        if isinstance(returned, (bytes, bytearray, memoryview)):
            return bytes(returned)
        what = "None" if returned is None else f"a {type(returned).__name__}"
        raise ValueError(f"{self.named}: {method}() returned {what}, not an accumulator (bytes)")


def _whole_instance_refused(step_name, step_type, held, kept, lost):
    """The error of a built-in step that keeps its state in cells in a keyed session, restoring there the
    whole-instance state of a checkpoint taken before it did: refused rather than dropped."""
    return ValueError(f"step '{step_name}' ({step_type}): the checkpoint holds {held}, but in a keyed session "
                      f"{step_type} keeps {kept}, so a checkpoint taken before that cannot be restored into it (its "
                      f"{lost} would be lost)")


BUILT_IN = {"append_field": AppendField, "batch": Batch, "filter": Filter, "count": Count,
            "running_count": RunningCount, "window": Window}


def write_string(out, value):
    write_bytes(out, value.encode("utf-8"))


def write_bytes(out, value):
    out.write(_INT.pack(len(value)))
    out.write(value)


def write_counts(counts, write_key):
    """The counting steps' state: version, number of counts, then each key and its count (big-endian)."""
    out = io.BytesIO()
    out.write(bytes([STATE_VERSION]))
    out.write(_INT.pack(len(counts)))
    for key, count in counts.items():
        write_key(out, key)
        out.write(_LONG.pack(count))
    return out.getvalue()


def read_counts(state, read_key, step):
    counts = {}
    if not state:
        return counts
    reader = StateReader(state, step)
    version = reader.byte()
    if version != STATE_VERSION:
        raise ValueError(f"{step} state version {version} is not {STATE_VERSION}")
    for _ in range(reader.int()):
        key = read_key(reader)
        counts[key] = reader.long()
    return counts


class StateReader:
    """Reads a state encoding, refusing a length that runs past the bytes left."""

    def __init__(self, state, what):
        self.state = state
        self.at = 0
        self.what = what

    def _take(self, count):
        if count < 0 or self.at + count > len(self.state):
            raise ValueError(f"{self.what} state ends early")
        start = self.at
        self.at += count
        return self.state[start:self.at]

    def byte(self):
        return self._take(1)[0]

    def int(self):
        return _INT.unpack(self._take(4))[0]

    def long(self):
        return _LONG.unpack(self._take(8))[0]

    def bytes(self, what):
        length = self.int()
        if length < 0 or length > len(self.state) - self.at:
            raise ValueError(f"a {what} of {length} bytes with {len(self.state) - self.at} left")
        return bytes(self._take(length))

    def string(self):
        return self.bytes("string").decode("utf-8", "replace")

    def remaining(self):
        return len(self.state) - self.at
