"""Cells: per-key state a step declares when it is built and reads and writes while it handles a record
(docs/protocol.md, "Cells: per-key state in Flink's keyed state").

A step declares its cells in its constructor::

    from flink_bridge.sdk import map_cell, value_cell

    class Deduplicate:
        def __init__(self):
            self.seen = map_cell("seen", ttl_ms=3_600_000)

        def process(self, message):
            event_id = message.headers["id"].encode()
            if event_id in self.seen:
                return []
            self.seen.put(event_id, b"")
            return [message]

A cell holds bytes: a value cell one value, a map cell entries of byte keys to byte values. What a step reads and
writes is the cell of the key of the record it is handling; the bridge keeps every key's cells in Flink's keyed
state and loads a key's into the session before its first record there (``LOAD``), and the worker writes back what
changed at each barrier (``CELL_WRITES``). A cell with a TTL hides a value once its write time (the bridge's
processing time of the input that wrote it) plus the TTL is at or before the current processing time.

This module is the worker's side of that: the ``CellStore`` of a session holds its declarations and the cells of
its resident keys, tracks what changed since the last barrier, weighs a key's cells (``resident_bytes``) and drops
the keys a barrier evicts. It knows nothing of the wire: a LOAD's ``KeyCells`` message is read by its fields, and
the writes come out as tuples (``session`` frames them).
"""
import contextlib
import ctypes
import struct
from itertools import chain

from . import sdk

# CellKind and CellOp, as bridge_control.proto and bridge_data.proto number them.
VALUE, MAP = 1, 2
SET, CLEAR, PUT, REMOVE = 0, 1, 2, 3
KIND_NAMES = {VALUE: "value", MAP: "map"}

# A TTL cell's values start with their write time, an i64 little-endian.
_TIME = struct.Struct("<q")
_pack_time = _TIME.pack
_unpack_time = _TIME.unpack_from
TIME_BYTES = _TIME.size
# What a KeyCells message adds around one write (or one loaded entry) besides its key, entry key and value: field
# tags, length varints, the cell id and the op, at most.
WRITE_OVERHEAD = 32


class CellsNotKeyed(ValueError):
    """A session that is not keyed whose steps declare cells: refused (FAILED_PRECONDITION)."""


class CellOutsideRecord(RuntimeError):
    """A cell used while no record is being handled (a watermark, a snapshot, a constructor)."""


class CellSpec:
    """One declared cell: its id on the wire (its index in the session's declarations), the step that declared it
    (its index in the segment and its name), its name, kind and TTL (0: none)."""

    __slots__ = ("id", "step_index", "step", "name", "kind", "ttl_ms")

    def __init__(self, cell_id, step_index, step, name, kind, ttl_ms):
        self.id = cell_id
        self.step_index = step_index
        self.step = step
        self.name = name
        self.kind = kind
        self.ttl_ms = ttl_ms

    def describe(self):
        return f"cell '{self.name}' of step '{self.step}'"

    def __repr__(self):
        return (f"CellSpec({self.id}, step {self.step_index} '{self.step}', '{self.name}', "
                f"{KIND_NAMES[self.kind]}, ttl_ms={self.ttl_ms})")


class _MapChanges:
    """What changed in one key's map cell since the last barrier: whether it was cleared, and the entries set or
    removed (after the clear, if any), in the order they first changed."""

    __slots__ = ("cleared", "entries")

    def __init__(self):
        self.cleared = False
        self.entries = {}


# The step being built and the store its cells go to: (store, step index, step name, specs declared so far).
_declaring = None
# The key of the record being handled, for current_key().
_record_key = None


def value_cell(name, ttl_ms=0):
    """Declares a value cell of the step being built (call it in the step's constructor): one bytes value per key,
    gone ``ttl_ms`` milliseconds of processing time after it was written (0: never)."""
    return _declare(name, VALUE, ttl_ms, ValueCell)


def map_cell(name, ttl_ms=0):
    """Declares a map cell of the step being built (call it in the step's constructor): entries of bytes keys to
    bytes values per key, each gone ``ttl_ms`` milliseconds of processing time after it was written (0: never)."""
    return _declare(name, MAP, ttl_ms, MapCell)


def current_key():
    """The key of the record being handled (bytes: what the pipeline's key extracts, UTF-8 text for a JSON field or
    header); None outside a record and in a session that is not keyed."""
    return _record_key


def _declare(name, kind, ttl_ms, handle):
    if not isinstance(name, str) or not name:
        raise TypeError(f"a cell's name must be a non-empty string, not {name!r}")
    if isinstance(ttl_ms, bool) or not isinstance(ttl_ms, int) or not 0 <= ttl_ms < 2 ** 63:
        raise TypeError(f"cell '{name}': ttl_ms must be milliseconds as an int >= 0 (0: no TTL), not {ttl_ms!r}")
    if _declaring is None:
        raise RuntimeError(f"cell '{name}' is declared where no session keeps cells: a step declares its cells in "
                           "its constructor, as a worker session (protocol version 5 or later) builds it; the "
                           "prototype's service (grpc_mode compat) has no keys and so no cells")
    store, step_index, step, declared = _declaring
    spec = store._declare(step_index, step, name, kind, ttl_ms, declared)
    declared.append(spec)
    return handle(store, spec)


def _as_bytes(value, spec, what):
    if type(value) is bytes:
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{spec.describe()}: {what} must be bytes, not {type(value).__name__}"
                    + (" (encode text, e.g. with .encode())" if isinstance(value, str) else ""))


class CellStore:
    """A session's cells: the declarations of its steps, the cells of its resident keys (per key a list indexed by
    cell id: a value cell's stored bytes or None, a map cell's dict of stored bytes), and what changed since the
    last barrier. Stored bytes are what goes on the wire: with a TTL, the write time comes first."""

    def __init__(self):
        self.specs = []
        self._by_name = {}
        # Once the first instance of the segment is built, later instances declare the same cells again.
        self._sealed = False
        self.resident = {}
        # The cells of the key of the record being handled, and that key; None outside a record.
        self.current = None
        self.current_key = None
        # key -> {cell id: True (a value cell) or _MapChanges}, in the order keys first changed.
        self._changes = {}
        # The (sequence, key) pairs loaded for the input being loaded: a first LOAD of a key replaces it.
        self._load_sequence = None
        self._loaded = set()
        # The most a write (key, entry key and stored value) may take, so that it fits a frame; None: no bound.
        self.max_write_bytes = None

    # Declaring

    @contextlib.contextmanager
    def declaring(self, step_index, step, restoring=False):
        """Cells declared while the step at ``step_index`` (named ``step``) is built are its cells. ``restoring``:
        the step's state is being restored, which declares its cells again where the state is the pickled instance,
        and none where it is the step's own bytes."""
        global _declaring
        outer = _declaring
        declared = []
        _declaring = (self, step_index, step, declared)
        try:
            yield
        finally:
            _declaring = outer
        if self._sealed and not (restoring and not declared):
            expected = [spec for spec in self.specs if spec.step_index == step_index]
            if len(declared) != len(expected):
                missing = expected[len(declared)]
                raise ValueError(f"step '{step}' did not declare {missing.describe()} this time, as it did when the "
                                 "session opened: a step declares the same cells whenever it is built")

    def seal(self):
        """The declarations are complete: a step built again (a new key group's instance) must declare the same."""
        self._sealed = True

    def _declare(self, step_index, step, name, kind, ttl_ms, declared):
        if not self._sealed:
            if (step_index, name) in self._by_name:
                raise ValueError(f"step '{step}' declares cell '{name}' twice: a cell's name is unique in its step")
            spec = CellSpec(len(self.specs), step_index, step, name, kind, ttl_ms)
            self.specs.append(spec)
            self._by_name[(step_index, name)] = spec
            return spec
        expected = [spec for spec in self.specs if spec.step_index == step_index]
        spec = expected[len(declared)] if len(declared) < len(expected) else None
        if spec is None or (spec.name, spec.kind, spec.ttl_ms) != (name, kind, ttl_ms):
            raise ValueError(f"step '{step}' declares {KIND_NAMES[kind]} cell '{name}' (ttl_ms {ttl_ms}) where it "
                             f"declared {_described(spec)} when the session opened: a step declares the same cells, "
                             "in the same order, whenever it is built")
        return spec

    # Records

    def enter(self, key):
        """The record being handled has ``key``: its cells are the steps' cells until ``leave``. False when the key
        is not resident (the bridge loaded no cells for it)."""
        global _record_key
        contents = self.resident.get(key)
        if contents is None and self.specs:
            return False
        self.current = contents
        self.current_key = key
        _record_key = key
        self._load_sequence = None
        return True

    def leave(self):
        global _record_key
        self.current = None
        self.current_key = None
        _record_key = None

    def make_resident(self, key):
        """``key`` resident with empty cells, unless it is already (a test harness's way; a session loads keys)."""
        if key not in self.resident:
            self.resident[key] = self._empty()

    def _empty(self):
        return [None if spec.kind == VALUE else {} for spec in self.specs]

    # Loading

    def load(self, sequence, key_cells):
        """One LOAD of input ``sequence``: ``key_cells`` has ``key`` and ``cells`` (each ``cell``, an optional
        ``value`` and ``entries`` of ``key`` and ``value``), as the KeyCells message. The first LOAD of a key in an
        input makes it resident with exactly those contents; a further one adds to them. A ValueError for contents
        that do not fit the declarations."""
        if sequence != self._load_sequence:
            self._load_sequence = sequence
            self._loaded = set()
        key = bytes(key_cells.key)
        if key not in self._loaded:
            self._loaded.add(key)
            contents = self._empty()
            self.resident[key] = contents
            # The bridge's contents are its keyed state as of the last barrier: nothing is changed against it.
            self._changes.pop(key, None)
        else:
            contents = self.resident[key]
        specs = self.specs
        for content in key_cells.cells:
            cell_id = content.cell
            if cell_id >= len(specs):
                raise ValueError(f"LOAD of input #{sequence} names cell {cell_id} for key {key_text(key)}, but the "
                                 f"session's steps declare {len(specs)} cell(s)")
            spec = specs[cell_id]
            if spec.kind == VALUE:
                if len(content.entries):
                    raise ValueError(f"LOAD of input #{sequence} gives entries to {spec.describe()}, a value cell "
                                     f"(key {key_text(key)})")
                if content.HasField("value"):
                    contents[cell_id] = self._loaded_value(spec, bytes(content.value), sequence, key)
            else:
                if content.HasField("value"):
                    raise ValueError(f"LOAD of input #{sequence} gives a value to {spec.describe()}, a map cell "
                                     f"(key {key_text(key)})")
                entries = contents[cell_id]
                for entry in content.entries:
                    entries[bytes(entry.key)] = self._loaded_value(spec, bytes(entry.value), sequence, key)

    @staticmethod
    def _loaded_value(spec, stored, sequence, key):
        if spec.ttl_ms and len(stored) < TIME_BYTES:
            raise ValueError(f"LOAD of input #{sequence} gives {spec.describe()} (key {key_text(key)}) a value of "
                             f"{len(stored)} bytes, without the {TIME_BYTES}-byte write time a cell with a TTL "
                             "stores first")
        return stored

    @property
    def loading(self):
        """The sequence of the input whose LOADs came and whose record has not yet; None when there is none."""
        return self._load_sequence

    # Tests (testing.StepHarness): a key's cells as the steps see them, and set as if loaded

    def visible(self, key):
        """What a step reads of ``key``'s cells now, per cell id: a value cell's bytes (None: none), a map cell's
        dict; nothing expired. None when ``key`` is not resident."""
        contents = self.resident.get(key)
        if contents is None:
            return None
        now = _now()
        seen = []
        for spec, stored in zip(self.specs, contents):
            ttl = spec.ttl_ms
            if spec.kind == VALUE:
                seen.append(stored if stored is None or not ttl else
                            stored[TIME_BYTES:] if _unpack_time(stored)[0] + ttl > now else None)
            else:
                seen.append({entry_key: value[TIME_BYTES:] if ttl else value for entry_key, value in stored.items()
                             if not ttl or _unpack_time(value)[0] + ttl > now})
        return seen

    def preset(self, key, cell_id, content):
        """Sets cell ``cell_id`` of ``key`` (made resident) to ``content`` (a value cell's bytes or None, a map
        cell's dict), as a LOAD would, written now where it has a TTL; no change to write back."""
        self.make_resident(key)
        spec = self.specs[cell_id]
        stamp = _pack_time(_now()) if spec.ttl_ms else b""
        if spec.kind == VALUE:
            stored = None if content is None else stamp + _as_bytes(content, spec, "a value")
        else:
            if not isinstance(content, dict):
                raise TypeError(f"{spec.describe()} is a map cell: give it a dict, not {type(content).__name__}")
            stored = {_as_bytes(entry_key, spec, "an entry's key"): stamp + _as_bytes(value, spec, "a value")
                      for entry_key, value in content.items()}
        self.resident[key][cell_id] = stored

    # Barriers

    def drain(self):
        """The changes since the last call, per key whose cells changed: ``[(key, [(cell id, op, value, entry key),
        ...]), ...]``, the writes in the order to apply them (a map's CLEAR before its puts); the cells are clean
        after it."""
        drained = []
        specs = self.specs
        for key, changed in self._changes.items():
            contents = self.resident[key]
            writes = []
            for cell_id in sorted(changed):
                stored = contents[cell_id]
                if specs[cell_id].kind == VALUE:
                    writes.append((cell_id, CLEAR, b"", b"") if stored is None else (cell_id, SET, stored, b""))
                    continue
                changes = changed[cell_id]
                if changes.cleared:
                    writes.append((cell_id, CLEAR, b"", b""))
                    # Every entry the map holds now was put after the clear.
                    writes.extend((cell_id, PUT, value, entry_key) for entry_key, value in stored.items())
                    continue
                for entry_key in changes.entries:
                    value = stored.get(entry_key)
                    writes.append((cell_id, REMOVE, b"", entry_key) if value is None
                                  else (cell_id, PUT, value, entry_key))
            if writes:
                drained.append((key, writes))
        self._changes = {}
        return drained

    def dirty(self):
        """Whether any cell changed since the last barrier."""
        return any(self._changes.values())

    def resident_bytes(self, key):
        """The bytes ``key``'s cells take here, as a CELL_WRITES frame's ``resident_bytes`` says: every stored value
        (with its write time, in a cell with a TTL), and every entry key and stored entry value of a map cell; what
        expired but was not read since is still held, so it counts. 0 for a key not resident."""
        contents = self.resident.get(key)
        if contents is None:
            return 0
        total = 0
        for stored in contents:
            if stored is None:
                continue
            if type(stored) is dict:
                if stored:
                    total += sum(map(len, chain(stored, stored.values())))
            else:
                total += len(stored)
        return total

    def evict(self, keys):
        """Drops the cells of ``keys`` (bytes each), as a barrier that names them asks once it is answered; a key
        not resident is ignored. The bridge names only keys no input touched since the previous barrier, so they
        are clean; what changed of a key dropped anyway is dropped with it (a LOAD brings the key back as the
        bridge holds it). What the dropped cells took then goes back to the system."""
        resident = self.resident
        changes = self._changes
        dropped = False
        for key in keys:
            key = bytes(key)
            if resident.pop(key, None) is not None:
                changes.pop(key, None)
                dropped = True
        if dropped:
            _give_back_freed()

    # What the handles call

    def _contents(self, spec):
        contents = self.current
        if contents is None:
            raise CellOutsideRecord(
                f"step '{spec.step}': cell '{spec.name}' is used outside a record: cells belong to the key of the "
                "record being handled, so a step reads and writes them only in process() (not in a watermark, a "
                "snapshot, a constructor, or a session that is not keyed)")
        return contents

    def _check_size(self, spec, entry_key, stored):
        limit = self.max_write_bytes
        if limit is not None:
            size = len(self.current_key) + len(entry_key) + len(stored) + WRITE_OVERHEAD
            if size > limit:
                raise ValueError(f"{spec.describe()}: a value of {len(stored)} bytes (with key "
                                 f"{key_text(self.current_key)}{' and its entry key' if entry_key else ''}) takes "
                                 f"{size} bytes in a frame, more than the {limit} a frame of this session holds: "
                                 "give the session larger rings, or keep less in one cell")

    def _changed_value(self, cell_id):
        """A value cell of the current key changes."""
        key = self.current_key
        changed = self._changes.get(key)
        if changed is None:
            changed = self._changes[key] = {}
        changed[cell_id] = True

    def _map_changes(self, cell_id):
        key = self.current_key
        changed = self._changes.get(key)
        if changed is None:
            changed = self._changes[key] = {}
        changes = changed.get(cell_id)
        if changes is None:
            changes = changed[cell_id] = _MapChanges()
        return changes

    def _changed_entry(self, cell_id, entry_key):
        """An entry of a map cell of the current key changes."""
        self._map_changes(cell_id).entries[entry_key] = None

    def _cleared_map(self, cell_id, contents):
        """A map cell of the current key is emptied."""
        changes = self._map_changes(cell_id)
        contents[cell_id] = {}
        changes.cleared = True
        changes.entries = {}


def _malloc_trim():
    """glibc's malloc_trim, or None under another C library."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return None


_MALLOC_TRIM = _malloc_trim()


def _give_back_freed():
    """Returns to the system the free pages of the C heap (an evicted value of more than 512 bytes is freed to glibc's
    malloc, which gives back only what lies at the top of an arena; evicting the keys a build loaded frees the bulk of
    the heap below the keys kept). It takes about a millisecond after a steady round's evictions, tens after a
    build's."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _described(spec):
    return "nothing" if spec is None else f"{KIND_NAMES[spec.kind]} cell '{spec.name}' (ttl_ms {spec.ttl_ms})"


def key_text(key):
    """A key as errors name it: its text when it is UTF-8, else its bytes."""
    try:
        return repr(key.decode("utf-8"))
    except UnicodeDecodeError:
        return repr(key)


def _now():
    return sdk.current_time_millis()


def _live(stored, ttl_ms):
    """Whether a TTL cell's stored value is still there at the current processing time."""
    return _unpack_time(stored)[0] + ttl_ms > _now()


class _Cell:
    __slots__ = ("_store", "_spec", "_id", "_ttl")

    def __init__(self, store, spec):
        self._store = store
        self._spec = spec
        self._id = spec.id
        self._ttl = spec.ttl_ms

    @property
    def name(self):
        return self._spec.name

    @property
    def ttl_ms(self):
        return self._spec.ttl_ms

    def _stored(self, value):
        return _pack_time(_now()) + value if self._ttl else value

    def _read(self, stored, default, holder, slot):
        """A value as the cell keeps it (``holder[slot]``; None where there is none) as the step reads it: without
        its write time, or ``default`` when there is none or it expired. Expired, it is gone from memory too
        (``_forget``): the bridge's state drops it by its own TTL, and a change made since the last barrier is still
        written back, as the value's absence."""
        if stored is None:
            return default
        if not self._ttl:
            return stored
        if _live(stored, self._ttl):
            return stored[TIME_BYTES:]
        self._forget(holder, slot)
        return default

    def __repr__(self):
        return f"{type(self).__name__}({self._spec.name!r}, ttl_ms={self._spec.ttl_ms})"

    def __reduce__(self):
        # A pickled instance keeps its cells as their declarations (never the session's cells themselves): the
        # instance restored declares them again, in the session that restores it. The Rust worker's hosted Python
        # cells pickle the same way, so such state moves between the two.
        from flink_bridge import sdk
        declare = sdk.value_cell if self._spec.kind == VALUE else sdk.map_cell
        return declare, (self._spec.name, self._spec.ttl_ms)


class ValueCell(_Cell):
    """One bytes value per key (``value_cell``)."""

    __slots__ = ()

    def get(self, default=None):
        """The current key's value, or ``default`` when it has none (or it expired)."""
        contents = self._store._contents(self._spec)
        return self._read(contents[self._id], default, contents, self._id)

    @staticmethod
    def _forget(contents, cell_id):
        contents[cell_id] = None

    def set(self, value):
        """Sets the current key's value (bytes); with a TTL, it is written now."""
        spec = self._spec
        store = self._store
        contents = store._contents(spec)
        stored = self._stored(_as_bytes(value, spec, "a value"))
        store._check_size(spec, b"", stored)
        store._changed_value(self._id)
        contents[self._id] = stored

    def clear(self):
        """Removes the current key's value."""
        store = self._store
        contents = store._contents(self._spec)
        if contents[self._id] is not None:
            store._changed_value(self._id)
            contents[self._id] = None


class MapCell(_Cell):
    """Entries of bytes keys to bytes values per key (``map_cell``). Reading gives only the entries that have not
    expired; ``keys()``, ``values()`` and ``items()`` give lists, so the map may change while they are walked."""

    __slots__ = ()

    def _entries(self):
        return self._store._contents(self._spec)[self._id]

    def get(self, entry_key, default=None):
        entry_key = _as_bytes(entry_key, self._spec, "an entry's key")
        entries = self._entries()
        return self._read(entries.get(entry_key), default, entries, entry_key)

    @staticmethod
    def _forget(entries, entry_key):
        del entries[entry_key]

    def __contains__(self, entry_key):
        return self.get(entry_key) is not None

    def contains(self, entry_key):
        return self.get(entry_key) is not None

    def put(self, entry_key, value):
        """Sets the entry ``entry_key`` of the current key's map (bytes both); with a TTL, it is written now."""
        spec = self._spec
        entry_key = _as_bytes(entry_key, spec, "an entry's key")
        stored = self._stored(_as_bytes(value, spec, "a value"))
        store = self._store
        entries = self._entries()
        store._check_size(spec, entry_key, stored)
        store._changed_entry(self._id, entry_key)
        entries[entry_key] = stored

    def remove(self, entry_key):
        """Removes the entry ``entry_key`` of the current key's map, if it has one."""
        entry_key = _as_bytes(entry_key, self._spec, "an entry's key")
        entries = self._entries()
        if entry_key in entries:
            self._store._changed_entry(self._id, entry_key)
            del entries[entry_key]

    def clear(self):
        """Removes every entry of the current key's map."""
        store = self._store
        contents = store._contents(self._spec)
        if contents[self._id]:
            store._cleared_map(self._id, contents)

    def items(self):
        entries = self._entries()
        if not self._ttl:
            return list(entries.items())
        now, ttl = _now(), self._ttl
        live, expired = [], []
        for entry_key, stored in entries.items():
            if _unpack_time(stored)[0] + ttl > now:
                live.append((entry_key, stored[TIME_BYTES:]))
            else:
                expired.append(entry_key)
        # Expired entries are gone from memory too (see ValueCell.get).
        for entry_key in expired:
            del entries[entry_key]
        return live

    def keys(self):
        return [entry_key for entry_key, _ in self.items()]

    def values(self):
        return [value for _, value in self.items()]

    def __len__(self):
        return len(self.items()) if self._ttl else len(self._entries())

    def __bool__(self):
        return len(self) > 0

    def __iter__(self):
        return iter(self.keys())
