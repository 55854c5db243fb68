//! Python steps hosted in the worker: a step whose type is `module.Class` is built by the Python worker's own
//! runtime (`flink_bridge.segments.build_step`, from the folder `--python-runtime` names), so a segment written
//! for the prototype's worker runs unchanged, with the same checks of what it returns and the same state (its
//! `snapshot()`/`restore()`, else its pickled instance). The ring, the frames and the records stay native; only
//! the segment's own code runs in Python.
//!
//! One interpreter serves the process; a session with Python steps gets a process of its own (child), so its
//! interpreter serves that session alone. A call stamps the session's clock first when it moved
//! (`flink_bridge.sdk.stamp_clock`, where the runtime keeps it). A prototype-style segment (the runtime's
//! `UserSegment`) is called directly, `instance.process(message)`, and the messages it returns are checked here; only
//! those that are not plain (`Message` with bytes, a dict of strings and an int) go through the runtime's `checked`,
//! which normalises them or raises its error. A thread that
//! calls into Python is attached to the interpreter for as long as it serves (`attach_this_thread`): without it,
//! every call would create and destroy a Python thread state, and with it the memory of its frame stack (an mmap
//! and a munmap, and a TLB shootdown, per call).
//!
//! Cells (docs/rust-worker.md, "Cells"): the worker installs its own `value_cell` and `map_cell` (and their
//! `ValueCell` and `MapCell`) into `flink_bridge.sdk` when it loads the runtime, before any segment's module is
//! imported, so a segment's `from flink_bridge.sdk import value_cell, map_cell` gets them. Called in the segment's
//! `__init__` while `build` builds it, they declare the step's cells with the session's `BuildContext`; the handles
//! they return reach the session's cells (cells.rs) of the record being handled. A handle pickles as its name (a
//! segment's state may be its pickled instance), and unpickles, while its step's state is restored, as that step's
//! cell of that name.
//!
//! Timers (docs/rust-worker.md, "Timers") the same way: the worker installs its own `timers()` into
//! `flink_bridge.sdk`, which declares the step's timers with its `BuildContext` (timers.rs) and gives the runtime's
//! own handle (`flink_bridge.timers.Timers`, with its checks and errors) reporting to the step's `TimerService`, so
//! its changes are the current input's key's. A firing calls the runtime step's `on_timer` (the instance's
//! `on_timer(timestamp, domain)`, `domain` the runtime's `EVENT_TIME` or `PROCESSING_TIME`), whose messages are
//! checked as `process`'s are. A handle pickles as `timers()`, which gives the step's own handle back while its state
//! is restored.
//!
//! `current_key()` too: the worker installs its own into `flink_bridge.sdk` (and `flink_bridge.cells`), which reads
//! the key of the input being handled (a keyed record or a firing) from the session's cells only when a step calls it,
//! as bytes, None outside one, as the Python worker's. Nothing goes into Python per input: while a step handles a
//! record or a firing, the calling thread points at its session's cells (`Handling`).
//!
//! A user aggregate of the built-in `window` step (`aggregate: module.Class`, steps.rs) is hosted the same way: the
//! runtime's own `flink_bridge.steps.UserAggregate` imports and makes it and calls it (`WindowAggregate`), so its
//! checks and errors are the Python worker's; a session with one gets a process of its own too (catalog.rs).

use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::OnceLock;

use indexmap::IndexMap;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{IntoPyDict, PyByteArray, PyBytes, PyCFunction, PyDict, PyList, PyLong, PyString, PyTuple};
use pyo3::{intern, PyTryFrom};

use crate::cells::{BuildContext, CellError, Cells, MapCell, ValueCell};
use crate::proto::TimerOp;
use crate::record::Record;
use crate::step::{Emit, Step, StepContext, StepError, TimeDomain};
use crate::timers::TimerService;

/// The runtime's switch (`flink_bridge.segments.PICKLED_STATE_ENV`): "refuse" keeps segments' state only through
/// their own `snapshot()`/`restore(bytes)`, never unpickled.
pub const PICKLED_STATE_ENV: &str = "FLINK_BRIDGE_PICKLED_STATE";

/// What every Python step needs from the runtime, imported once.
struct Host {
    build_step: Py<PyAny>,
    message: Py<PyAny>,
    stamp_clock: Py<PyAny>,
    user_segment: Py<PyAny>,
    /// `segments.refuse_unhandled_timers(step_name, step)`: a step that declares timers needs an `on_timer`.
    refuse_unhandled_timers: Py<PyAny>,
    /// The runtime's `EVENT_TIME` and `PROCESSING_TIME`, a firing's domain as `on_timer` gets it.
    event_time: Py<PyAny>,
    processing_time: Py<PyAny>,
    /// `steps.UserAggregate(step_name, class_name)`: a window's user aggregate, its calls checked.
    user_aggregate: Py<PyAny>,
}

static HOST: OnceLock<Host> = OnceLock::new();

/// The clock last stamped into the runtime (`i64::MIN`: none yet); the interpreter serves one session.
static STAMPED: AtomicI64 = AtomicI64::new(i64::MIN);

/// Starts the interpreter with the Python runtime and the segments' folders on its path; an error names what
/// failed to load.
pub fn start(runtime: PathBuf, paths: &[PathBuf]) -> Result<(), String> {
    pyo3::prepare_freethreaded_python();
    let host = Python::with_gil(|py| -> PyResult<Host> {
        let sys = py.import("sys")?;
        let sys_path: &PyList = sys.getattr("path")?.downcast()?;
        for (index, folder) in std::iter::once(&runtime).chain(paths).enumerate() {
            sys_path.insert(index, folder.to_string_lossy().as_ref())?;
        }
        // A step's print reaches the log line by line (its parent relays it, child.rs), and none is left in a buffer
        // when this process exits at its session's end, which does not flush Python's.
        sys.getattr("stdout")?.call_method("reconfigure", (), Some([("line_buffering", true)].into_py_dict(py)))?;
        let segments = py.import("flink_bridge.segments")?;
        let sdk = py.import("flink_bridge.sdk")?;
        let steps = py.import("flink_bridge.steps")?;
        install_cells(py, sdk)?;
        install_timers(py, sdk)?;
        install_current_key(sdk, py.import("flink_bridge.cells")?)?;
        Ok(Host {
            build_step: segments.getattr("build_step")?.into(),
            message: sdk.getattr("Message")?.into(),
            stamp_clock: sdk.getattr("stamp_clock")?.into(),
            user_segment: segments.getattr("UserSegment")?.into(),
            refuse_unhandled_timers: segments.getattr("refuse_unhandled_timers")?.into(),
            event_time: sdk.getattr("EVENT_TIME")?.into(),
            processing_time: sdk.getattr("PROCESSING_TIME")?.into(),
            user_aggregate: steps.getattr("UserAggregate")?.into(),
        })
    })
    .map_err(|e| format!("the Python runtime in {} cannot be loaded: {e}", runtime.display()))?;
    HOST.set(host).map_err(|_| "the Python runtime is loaded once".to_string())
}

/// This thread's Python thread state, kept while it lives, the GIL released.
struct Attached {
    state: pyo3::ffi::PyGILState_STATE,
    saved: *mut pyo3::ffi::PyThreadState,
}

impl Drop for Attached {
    fn drop(&mut self) {
        unsafe {
            pyo3::ffi::PyEval_RestoreThread(self.saved);
            pyo3::ffi::PyGILState_Release(self.state);
        }
    }
}

thread_local! {
    static ATTACHED: RefCell<Option<Attached>> = RefCell::new(None);
}

/// Attaches the calling thread to the interpreter until `detach_this_thread` (or its end), when the worker hosts
/// Python; later calls from it into Python then reuse its thread state.
pub fn attach_this_thread() {
    if HOST.get().is_none() {
        return;
    }
    ATTACHED.with(|attached| {
        let mut attached = attached.borrow_mut();
        if attached.is_none() {
            let state = unsafe { pyo3::ffi::PyGILState_Ensure() };
            let saved = unsafe { pyo3::ffi::PyEval_SaveThread() };
            *attached = Some(Attached { state, saved });
        }
    });
}

pub fn detach_this_thread() {
    ATTACHED.with(|attached| drop(attached.borrow_mut().take()));
}

/// The Python side of cells: the handles, and the functions that declare them (`_declare` is added by the worker).
const CELLS_MODULE: &str = r#"
class ValueCell:
    """A step's value cell: the value of the key of the record being handled. get() -> bytes or None, set(bytes),
    clear()."""
    __slots__ = ("name", "ttl_ms", "_access")

    def __init__(self, name, ttl_ms, access):
        self.name = name
        self.ttl_ms = ttl_ms
        self._access = access

    def get(self):
        return self._access(0)

    def set(self, value):
        self._access(1, value)

    def clear(self):
        self._access(2)

    def __reduce__(self):
        # Pickled as the declaration (flink_bridge.sdk.value_cell), which gives the restored step's cell back.
        return value_cell, (self.name, self.ttl_ms)

    def __repr__(self):
        return f"ValueCell({self.name!r})"


class MapCell:
    """A step's map cell: the map (bytes to bytes) of the key of the record being handled. get(key) -> bytes or
    None, put(key, value), remove(key), clear(), items() -> [(key, value)] in key order."""
    __slots__ = ("name", "ttl_ms", "_access")

    def __init__(self, name, ttl_ms, access):
        self.name = name
        self.ttl_ms = ttl_ms
        self._access = access

    def get(self, key):
        return self._access(0, key)

    def put(self, key, value):
        self._access(1, key, value)

    def remove(self, key):
        self._access(2, key)

    def clear(self):
        self._access(3)

    def items(self):
        return self._access(4)

    def __reduce__(self):
        return map_cell, (self.name, self.ttl_ms)

    def __repr__(self):
        return f"MapCell({self.name!r})"


def value_cell(name, ttl_ms=0):
    """Declares the step's value cell ``name``, in its class's __init__; with ``ttl_ms`` above 0, a value is gone
    that many ms of processing time after it was written."""
    return ValueCell(name, ttl_ms, _declare(name, False, ttl_ms))


def map_cell(name, ttl_ms=0):
    """Declares the step's map cell ``name``, in its class's __init__; with ``ttl_ms`` above 0, an entry is gone
    that many ms of processing time after it was written."""
    return MapCell(name, ttl_ms, _declare(name, True, ttl_ms))


# They are flink_bridge.sdk's: a pickled cell names them there.
for _public in (ValueCell, MapCell, value_cell, map_cell):
    _public.__module__ = "flink_bridge.sdk"
"#;

/// The names the worker sets in `flink_bridge.sdk`.
const CELL_NAMES: [&str; 4] = ["value_cell", "map_cell", "ValueCell", "MapCell"];

fn install_cells(py: Python<'_>, sdk: &PyModule) -> PyResult<()> {
    let cells = PyModule::from_code(py, CELLS_MODULE, "flink_bridge_worker_cells.py", "flink_bridge_worker_cells")?;
    cells.add("_declare", PyCFunction::new_closure(declare, py)?)?;
    for name in CELL_NAMES {
        sdk.setattr(name, cells.getattr(name)?)?;
    }
    Ok(())
}

thread_local! {
    /// The cells of the session whose Python step handles a record or a firing on this thread, while it does: where
    /// `current_key()` reads the input's key; null at any other time.
    static HANDLING: Cell<*const Cells> = const { Cell::new(std::ptr::null()) };
}

/// A step handles a record or a firing with `cells` its session's, until dropped: two stores of a pointer, no more.
struct Handling(*const Cells);

impl Handling {
    fn start(cells: &Cells) -> Handling {
        Handling(HANDLING.with(|handling| handling.replace(cells)))
    }
}

impl Drop for Handling {
    fn drop(&mut self) {
        HANDLING.with(|handling| handling.set(self.0));
    }
}

const CURRENT_KEY_DOC: &str = "current_key()\n--\n\nThe key of the record (or the timer's firing) being handled, as bytes; None outside one or in a session that is \
not keyed.\0";

/// Makes the worker's `current_key` the one `flink_bridge.sdk` (and `flink_bridge.cells`, whose function the SDK's
/// calls) gives.
fn install_current_key(sdk: &PyModule, cells: &PyModule) -> PyResult<()> {
    let function = PyCFunction::new(current_key, "current_key\0", CURRENT_KEY_DOC, sdk.into())?;
    sdk.setattr("current_key", function)?;
    cells.setattr("current_key", function)
}

/// `current_key()`: the key of the record or firing a step handles on this thread, as bytes, read from its session's
/// cells; None outside one (a watermark, a constructor, a checkpoint) and in a session that is not keyed. Nothing in
/// it can panic.
unsafe extern "C" fn current_key(_module: *mut pyo3::ffi::PyObject, _args: *mut pyo3::ffi::PyObject) -> *mut pyo3::ffi::PyObject {
    let cells = HANDLING.try_with(Cell::get).unwrap_or(std::ptr::null());
    // Set only while the step whose session's cells they are is called (`Handling`), so they outlive the call.
    let key = cells.as_ref().and_then(|cells| {
        cells.with_current_key(|key| key.map(|key| pyo3::ffi::PyBytes_FromStringAndSize(key.as_ptr().cast(), key.len() as pyo3::ffi::Py_ssize_t)))
    });
    // A null (no memory for the bytes) is returned as it is, its MemoryError set.
    key.unwrap_or_else(|| {
        let none = pyo3::ffi::Py_None();
        pyo3::ffi::Py_INCREF(none);
        none
    })
}

/// A cell a Python step declared: its name, whether a map, and its access function.
#[derive(Clone)]
struct DeclaredCell {
    name: String,
    is_map: bool,
    access: Py<PyAny>,
}

/// What a Python step declared while it was built: its cells, and the handle of its timers if it declared them.
#[derive(Clone, Default)]
struct Declared {
    cells: Vec<DeclaredCell>,
    timers: Option<Py<PyAny>>,
}

thread_local! {
    /// The step `build` is building on this thread: what `value_cell`, `map_cell` and `timers` declare its cells
    /// and timers with, and what it declared so far.
    static DECLARING: RefCell<Option<(BuildContext, Declared)>> = RefCell::new(None);
    /// What the step whose state is being restored on this thread declared: what a pickled cell or timers handle
    /// unpickles as.
    static RESTORING: RefCell<Option<Declared>> = RefCell::new(None);
}

/// Declares the cells and timers of the step being built on this thread until dropped.
struct Declaring;

impl Declaring {
    fn start(context: &BuildContext) -> Declaring {
        DECLARING.with(|declaring| *declaring.borrow_mut() = Some((context.clone(), Declared::default())));
        Declaring
    }

    /// What the step declared so far.
    fn declared(&self) -> Declared {
        DECLARING.with(|declaring| declaring.borrow().as_ref().map(|(_, declared)| declared.clone()).unwrap_or_default())
    }
}

/// Changes what the step being built on this thread declared.
fn declared_now(change: impl FnOnce(&mut Declared)) {
    DECLARING.with(|declaring| declaring.borrow_mut().as_mut().map(|(_, declared)| change(declared)));
}

/// The context of the step being built on this thread; when none is, `Err` of what `call` (a declaration) gives:
/// while a step's state is restored (a pickled handle unpickles as its declaration), `find` of what that step
/// declared, else an error (`what`: "cells" or "timers", declared in `__init__` only).
fn building_or_restored<T>(call: &str, what: &str, find: impl FnOnce(&Declared) -> Option<T>) -> Result<BuildContext, PyResult<T>> {
    if let Some(context) = DECLARING.with(|declaring| declaring.borrow().as_ref().map(|(context, _)| context.clone())) {
        return Ok(context);
    }
    Err(RESTORING.with(|restoring| match restoring.borrow().as_ref() {
        Some(declared) => find(declared).ok_or_else(|| PyValueError::new_err(format!("the step's restored state holds {call}, which the step does not declare"))),
        None => Err(PyRuntimeError::new_err(format!("{call} is called while no step is being built: a step declares its {what} in its class's __init__"))),
    }))
}

impl Drop for Declaring {
    fn drop(&mut self) {
        DECLARING.with(|declaring| declaring.borrow_mut().take());
    }
}

/// Restores a step's state with its cells what pickled cells unpickle as, until dropped.
struct Restoring;

impl Restoring {
    fn start(declared: &Declared) -> Restoring {
        RESTORING.with(|restoring| *restoring.borrow_mut() = Some(declared.clone()));
        Restoring
    }
}

impl Drop for Restoring {
    fn drop(&mut self) {
        RESTORING.with(|restoring| restoring.borrow_mut().take());
    }
}

/// `_declare(name, is_map, ttl_ms)`: the access function of a new cell of the step being built; while a step's state
/// is restored (a pickled cell unpickles as its declaration), that step's cell of this name.
fn declare(args: &PyTuple, _: Option<&PyDict>) -> PyResult<PyObject> {
    let py = args.py();
    let (name, is_map, ttl_ms): (String, bool, i64) = args.extract()?;
    let function = if is_map { "map_cell" } else { "value_cell" };
    let found = |declared: &Declared| declared.cells.iter().find(|c| c.name == name && c.is_map == is_map).map(|c| c.access.clone());
    let context = match building_or_restored(&format!("{function}('{name}')"), "cells", found) {
        Ok(context) => context,
        Err(restored) => return restored,
    };
    let access: &PyCFunction = if is_map {
        let cell = context.map_cell_with_ttl(&name, ttl_ms).map_err(PyValueError::new_err)?;
        PyCFunction::new_closure(move |args: &PyTuple, _: Option<&PyDict>| map_access(&cell, args), py)?
    } else {
        let cell = context.value_cell_with_ttl(&name, ttl_ms).map_err(PyValueError::new_err)?;
        PyCFunction::new_closure(move |args: &PyTuple, _: Option<&PyDict>| value_access(&cell, args), py)?
    };
    let declared = DeclaredCell { name, is_map, access: access.into() };
    declared_now(|declaring| declaring.cells.push(declared.clone()));
    Ok(declared.access)
}

/// The Python side of timers: `timers()`, and the session the runtime's handle reports to (`_declare` is added by
/// the worker).
const TIMERS_MODULE: &str = r#"
from flink_bridge.timers import Timers


class _Session:
    """What a handle (the runtime's Timers) reports to, in place of the Python worker's TimerStore: ``active`` says
    whether a keyed record or a firing is being handled, and ``changes.append((op, step index, domain, timestamp))``
    makes a change, both through the step's TimerService in the worker."""
    __slots__ = ("_usable", "_change")

    def __init__(self, usable, change):
        self._usable = usable
        self._change = change

    @property
    def active(self):
        return self._usable()

    @property
    def changes(self):
        return self

    def append(self, change):
        op, _, domain, timestamp = change
        self._change(op, domain, timestamp)


def _handle(step_index, step, usable, change):
    return Timers(_Session(usable, change), step_index, step)


def timers():
    """Declares that the step being built sets timers, in its class's __init__, and gives the handle it sets and
    deletes them with (set_event_time(ms), set_processing_time(ms), delete_event_time(ms), delete_processing_time(ms),
    set(ms, domain), delete(ms, domain)) for the key of the record or firing being handled; its on_timer(timestamp,
    domain) handles their firings."""
    return _declare()


# It is flink_bridge.sdk's: a pickled handle names it there.
timers.__module__ = "flink_bridge.sdk"
"#;

fn install_timers(py: Python<'_>, sdk: &PyModule) -> PyResult<()> {
    let timers = PyModule::from_code(py, TIMERS_MODULE, "flink_bridge_worker_timers.py", "flink_bridge_worker_timers")?;
    let handle: Py<PyAny> = timers.getattr("_handle")?.into();
    timers.add("_declare", PyCFunction::new_closure(move |args: &PyTuple, _: Option<&PyDict>| declare_timers(args.py(), &handle), py)?)?;
    sdk.setattr("timers", timers.getattr("timers")?)
}

/// `_declare()` of `timers()`: the handle (made by `handle`) of the timers of the step being built, one however often
/// it asks; while a step's state is restored (a pickled handle unpickles as `timers()`), that step's.
fn declare_timers(py: Python<'_>, handle: &Py<PyAny>) -> PyResult<PyObject> {
    let context = match building_or_restored("timers()", "timers", |declared| declared.timers.clone()) {
        Ok(context) => context,
        Err(restored) => return restored,
    };
    if let Some(timers) = DECLARING.with(|declaring| declaring.borrow().as_ref().and_then(|(_, declared)| declared.timers.clone())) {
        return Ok(timers);
    }
    let service = context.timers().map_err(PyValueError::new_err)?;
    let usable = service.clone();
    let usable = PyCFunction::new_closure(move |_: &PyTuple, _: Option<&PyDict>| usable.usable(), py)?;
    let changed = service.clone();
    let change = PyCFunction::new_closure(move |args: &PyTuple, _: Option<&PyDict>| timer_change(&changed, args), py)?;
    let timers = handle.call1(py, (service.step(), context.step_name(), usable, change))?;
    declared_now(|declared| declared.timers = Some(timers.clone_ref(py)));
    Ok(timers)
}

/// A handle's change, `(op, domain, timestamp)` as the runtime's `Timers` checked and numbered them.
fn timer_change(service: &TimerService, args: &PyTuple) -> PyResult<()> {
    let (op, domain, timestamp): (i32, i32, i64) = args.extract()?;
    let domain = TimeDomain::from_proto(domain).ok_or_else(|| PyValueError::new_err(format!("{domain} is no time domain")))?;
    let changed = if op == TimerOp::Delete as i32 { service.delete(domain, timestamp) } else { service.set(domain, timestamp) };
    changed.map_err(|e| PyRuntimeError::new_err(e.0))
}

fn cell_error(error: CellError) -> PyErr {
    PyRuntimeError::new_err(error.0)
}

/// The bytes of a key or value a step hands a cell: bytes or a bytearray.
fn bytes_argument(args: &PyTuple, index: usize, cell: &str, what: &str) -> PyResult<Vec<u8>> {
    let value = args.get_item(index)?;
    if let Ok(bytes) = value.downcast::<PyBytes>() {
        return Ok(bytes.as_bytes().to_vec());
    }
    if let Ok(bytes) = value.downcast::<PyByteArray>() {
        return Ok(bytes.to_vec());
    }
    Err(PyTypeError::new_err(format!("{cell}: {what} is bytes, not {}", value.get_type().name().unwrap_or("an object"))))
}

fn optional_bytes(py: Python<'_>, value: Option<Vec<u8>>) -> PyObject {
    value.map_or_else(|| py.None(), |v| PyBytes::new(py, &v).into())
}

/// A ValueCell's method: 0 get(), 1 set(value), 2 clear().
fn value_access(cell: &ValueCell, args: &PyTuple) -> PyResult<PyObject> {
    let py = args.py();
    let operation: u8 = args.get_item(0)?.extract()?;
    Ok(match operation {
        0 => optional_bytes(py, cell.get().map_err(cell_error)?),
        1 => {
            let value = bytes_argument(args, 1, &cell.describe(), "a value")?;
            cell.set(value).map_err(cell_error)?;
            py.None()
        }
        _ => {
            cell.clear().map_err(cell_error)?;
            py.None()
        }
    })
}

/// A MapCell's method: 0 get(key), 1 put(key, value), 2 remove(key), 3 clear(), 4 items().
fn map_access(cell: &MapCell, args: &PyTuple) -> PyResult<PyObject> {
    let py = args.py();
    let operation: u8 = args.get_item(0)?.extract()?;
    let key = || bytes_argument(args, 1, &cell.describe(), "an entry's key");
    Ok(match operation {
        0 => optional_bytes(py, cell.get(key()?).map_err(cell_error)?),
        1 => {
            let value = bytes_argument(args, 2, &cell.describe(), "an entry's value")?;
            cell.put(key()?, value).map_err(cell_error)?;
            py.None()
        }
        2 => {
            cell.remove(key()?).map_err(cell_error)?;
            py.None()
        }
        3 => {
            cell.clear().map_err(cell_error)?;
            py.None()
        }
        _ => {
            let entries = cell.entries().map_err(cell_error)?;
            PyList::new(py, entries.iter().map(|(k, v)| (PyBytes::new(py, k), PyBytes::new(py, v)))).into()
        }
    })
}

/// A step in Python, or None when the worker hosts no Python (no `--python-runtime`); the cells and timers it
/// declares while it is built (`value_cell`, `map_cell`, `timers`) are declared with `context`. A step that declares
/// timers without an `on_timer` is refused, as the Python worker refuses it.
pub fn build(step_name: &str, step_type: &str, config_json: &str, context: &BuildContext) -> Option<Result<Box<dyn Step>, String>> {
    let host = HOST.get()?;
    Some(Python::with_gil(|py| {
        let _declaring = Declaring::start(context);
        let built = host.build_step.call1(py, (step_name, step_type, config_json)).and_then(|step| {
            let segment_process = segment_process(py, &step)?;
            // Made first, so that a step refused is closed as it is dropped.
            let built = PythonStep { step, segment_process, declared: _declaring.declared(), cells: context.cells().clone() };
            if built.declared.timers.is_some() {
                host.refuse_unhandled_timers.call1(py, (step_name, &built.step))?;
            }
            Ok(Box::new(built) as Box<dyn Step>)
        });
        built.map_err(|e| e.value(py).to_string())
    }))
}

struct PythonStep {
    /// The runtime's step: process(message, emit), on_watermark(timestamp, emit), snapshot_state(),
    /// restore_state(bytes), checkpoint_completed(id), checkpoint_aborted(id), close(); a `UserSegment` also
    /// checked(output, method) and _emit_all(outputs, method, emit).
    step: Py<PyAny>,
    /// A `UserSegment`'s `instance.process`, called directly; None for every other step. Taken again after a
    /// restore, which may replace the instance.
    segment_process: Option<Py<PyAny>>,
    /// The cells and timers it declared while it was built: what its pickled cells and timers handle unpickle as
    /// when its state is restored.
    declared: Declared,
    /// Its session's cells, where `current_key()` reads the key of the record or firing it handles.
    cells: Cells,
}

fn segment_process(py: Python<'_>, step: &Py<PyAny>) -> PyResult<Option<Py<PyAny>>> {
    if !step.as_ref(py).get_type().is(host().user_segment.as_ref(py)) {
        return Ok(None);
    }
    Ok(Some(step.getattr(py, "instance")?.getattr(py, "process")?))
}

fn host() -> &'static Host {
    HOST.get().expect("a Python step exists only once the runtime is loaded")
}

#[cfg(test)]
thread_local! {
    /// Set by `tests::without_runtime`: this thread builds as a worker without `--python-runtime` does.
    static NO_RUNTIME: std::cell::Cell<bool> = std::cell::Cell::new(false);
}

/// The runtime, when the worker hosts Python.
fn hosted() -> Option<&'static Host> {
    #[cfg(test)]
    if NO_RUNTIME.with(std::cell::Cell::get) {
        return None;
    }
    HOST.get()
}

/// A `window` step's user aggregate, a Python class `module.Class` (docs/steps.md): the runtime's
/// `steps.UserAggregate`, which calls the class's `add(accumulator, record)`, `merge(a, b)` and `result(accumulator)`
/// and checks what they return. An error is the runtime's message, which names the step and the class.
pub struct WindowAggregate {
    aggregate: Py<PyAny>,
}

/// The user aggregate `class_name` of step `step_name`, made by the runtime; None when the worker hosts no Python.
pub fn window_aggregate(step_name: &str, class_name: &str) -> Option<Result<WindowAggregate, String>> {
    let host = hosted()?;
    Some(Python::with_gil(|py| {
        let aggregate = host.user_aggregate.call1(py, (step_name, class_name)).map_err(|e| e.value(py).to_string())?;
        Ok(WindowAggregate { aggregate })
    }))
}

impl WindowAggregate {
    /// The accumulator with `record` added; `accumulator` is None for a pane's first record.
    pub fn add(&self, accumulator: Option<Vec<u8>>, record: &Record, context: &StepContext) -> Result<Vec<u8>, StepError> {
        self.call(context, |py| {
            let accumulator = optional_bytes(py, accumulator);
            self.aggregate.call_method1(py, intern!(py, "add"), (accumulator, message(py, record.clone())?))
        })
    }

    /// The accumulator of two panes, `a`'s records before `b`'s.
    pub fn merge(&self, a: &[u8], b: &[u8], context: &StepContext) -> Result<Vec<u8>, StepError> {
        self.call(context, |py| self.aggregate.call_method1(py, intern!(py, "merge"), (PyBytes::new(py, a), PyBytes::new(py, b))))
    }

    /// The result of an accumulator, as the runtime writes it in JSON.
    pub fn result_json(&self, accumulator: &[u8], context: &StepContext) -> Result<String, StepError> {
        self.call(context, |py| self.aggregate.call_method1(py, intern!(py, "result_json"), (PyBytes::new(py, accumulator),)))
    }

    /// What `call` returns with the session's clock stamped, as `T`; the runtime's error as the step's.
    fn call<T: for<'a> FromPyObject<'a>>(&self, context: &StepContext, call: impl FnOnce(Python<'_>) -> PyResult<PyObject>) -> Result<T, StepError> {
        Python::with_gil(|py| {
            stamp(py, context).and_then(|_| call(py)).and_then(|returned| returned.extract::<T>(py)).map_err(|e| StepError::from(e.value(py).to_string()))
        })
    }
}

/// "module.Type: message" of a Python exception, as an error text names it (`failure`).
fn describe(py: Python<'_>, error: PyErr) -> String {
    failure(py, error).to_string()
}

/// A Python exception as a step's error: its class qualified with its module unless a builtin (as Python's own
/// traceback names it), its message with the last frame of its traceback when there is one.
fn failure(py: Python<'_>, error: PyErr) -> StepError {
    let kind = error.get_type(py);
    let name = kind.name().unwrap_or("Exception");
    let class = match kind.getattr(intern!(py, "__module__")).and_then(|m| m.extract::<&str>()) {
        Ok(module) if module != "builtins" => format!("{module}.{name}"),
        _ => name.to_string(),
    };
    let location = error
        .traceback(py)
        .and_then(|tb| tb.format().ok())
        .and_then(|text| text.lines().rev().find(|l| l.trim_start().starts_with("File ")).map(|l| format!(" ({})", l.trim())))
        .unwrap_or_default();
    StepError { class: class.into(), message: format!("{}{location}", error.value(py)) }
}

impl PythonStep {
    /// A `UserSegment`'s process: what the runtime's `UserSegment.process` does, with the common case (a list of
    /// plain messages) checked here instead of by a Python call per message.
    fn process_segment(&self, process: &Py<PyAny>, input: Record, context: &StepContext, emit: &mut Emit)
                       -> Result<(), StepError> {
        Python::with_gil(|py| {
            let outputs = stamp(py, context)
                .and_then(|_| process.call1(py, (message(py, input)?,)))
                .map_err(|e| failure(py, e))?;
            let outputs = outputs.as_ref(py);
            if let Ok(list) = <PyList as PyTryFrom>::try_from_exact(outputs) {
                for output in list {
                    emit(self.checked(py, output).map_err(|e| failure(py, e))?);
                }
                return Ok(());
            }
            // Anything else (a generator, None, a wrong type) goes through the runtime's own checks and errors.
            emit_appended(py, emit, |append| self.step.call_method1(py, "_emit_all", (outputs, "process", append)))
        })
    }

    /// `output` as a record: directly when it is a plain message, else as the runtime's `checked` makes it.
    fn checked(&self, py: Python<'_>, output: &PyAny) -> PyResult<Record> {
        if let Some(plain) = plain_record(py, output)? {
            return Ok(plain);
        }
        record(self.step.call_method1(py, "checked", (output, "process"))?.as_ref(py))
    }

    /// Calls `call(outputs.append)` (a method of the runtime's step, given the append last) with the session's clock
    /// stamped, and emits what it appended; one turn on the GIL for all of it.
    fn call_emitting(&self, context: &StepContext, emit: &mut Emit, call: impl FnOnce(Python<'_>, &PyAny) -> PyResult<PyObject>)
                     -> Result<(), StepError> {
        Python::with_gil(|py| {
            stamp(py, context).map_err(|e| failure(py, e))?;
            emit_appended(py, emit, |append| call(py, append))
        })
    }
}

/// Calls `call` with a list's `append` and emits, as records, the messages it appended.
fn emit_appended(py: Python<'_>, emit: &mut Emit, call: impl FnOnce(&PyAny) -> PyResult<PyObject>) -> Result<(), StepError> {
    let outputs = PyList::empty(py);
    outputs.getattr("append").and_then(call).map_err(|e| failure(py, e))?;
    for output in outputs {
        emit(record(output).map_err(|e| failure(py, e))?);
    }
    Ok(())
}

fn stamp(py: Python<'_>, context: &StepContext) -> PyResult<()> {
    if let Some(millis) = context.clock.filter(|&millis| STAMPED.load(Ordering::Relaxed) != millis) {
        host().stamp_clock.call1(py, (millis,))?;
        STAMPED.store(millis, Ordering::Relaxed);
    }
    Ok(())
}

/// The record of a message whose fields have exactly the plain types the runtime's `checked` lets through as they
/// are (bytes, a dict of str to str, an int within 64 bits); None for anything else, which `checked` decides on.
fn plain_record(py: Python<'_>, output: &PyAny) -> PyResult<Option<Record>> {
    if !output.get_type().is(host().message.as_ref(py)) {
        return Ok(None);
    }
    let (payload, headers, timestamp) = (output.getattr(intern!(py, "payload"))?, output.getattr(intern!(py, "headers"))?,
                                         output.getattr(intern!(py, "timestamp"))?);
    let (Ok(payload), Ok(headers), Ok(timestamp)) = (<PyBytes as PyTryFrom>::try_from_exact(payload),
                                                     <PyDict as PyTryFrom>::try_from_exact(headers),
                                                     <PyLong as PyTryFrom>::try_from_exact(timestamp)) else {
        return Ok(None);
    };
    let Ok(timestamp) = timestamp.extract::<i64>() else { return Ok(None) };
    let mut map = IndexMap::with_capacity(headers.len());
    for (key, value) in headers {
        let (Ok(key), Ok(value)) = (<PyString as PyTryFrom>::try_from_exact(key), <PyString as PyTryFrom>::try_from_exact(value)) else {
            return Ok(None);
        };
        map.insert(key.to_str()?.to_owned(), value.to_str()?.to_owned());
    }
    Ok(Some(Record { payload: payload.as_bytes().to_vec(), headers: map, timestamp }))
}

/// A runtime Message (its fields already checked by the runtime) as a record.
fn record(message: &PyAny) -> PyResult<Record> {
    let payload: &PyBytes = message.getattr("payload")?.downcast()?;
    let headers: &PyDict = message.getattr("headers")?.downcast()?;
    let mut map = IndexMap::with_capacity(headers.len());
    for (key, value) in headers {
        map.insert(key.extract::<String>()?, value.extract::<String>()?);
    }
    Ok(Record { payload: payload.as_bytes().to_vec(), headers: map, timestamp: message.getattr("timestamp")?.extract()? })
}

fn message(py: Python<'_>, record: Record) -> PyResult<PyObject> {
    let headers = PyDict::new(py);
    for (key, value) in record.headers {
        headers.set_item(key, value)?;
    }
    host().message.call1(py, (PyBytes::new(py, &record.payload), headers, record.timestamp))
}

impl Step for PythonStep {
    fn process(&mut self, record: Record, context: &StepContext, emit: &mut Emit) -> Result<(), StepError> {
        let _handling = Handling::start(&self.cells);
        match &self.segment_process {
            Some(process) => self.process_segment(process, record, context, emit),
            None => self.call_emitting(context, emit, |py, append| self.step.call_method1(py, "process", (message(py, record)?, append))),
        }
    }

    /// The runtime step's `on_timer`: a segment's `on_timer(timestamp, domain)`, its messages checked as `process`'s.
    fn on_timer(&mut self, timestamp: i64, domain: TimeDomain, context: &StepContext, emit: &mut Emit) -> Result<(), StepError> {
        let domain = match domain {
            TimeDomain::EventTime => &host().event_time,
            TimeDomain::ProcessingTime => &host().processing_time,
        };
        let _handling = Handling::start(&self.cells);
        self.call_emitting(context, emit, |py, append| self.step.call_method1(py, "on_timer", (timestamp, domain, append)))
    }

    fn on_watermark(&mut self, timestamp: i64, context: &StepContext, emit: &mut Emit) -> Result<(), StepError> {
        self.call_emitting(context, emit, |py, append| self.step.call_method1(py, "on_watermark", (timestamp, append)))
    }

    fn snapshot_state(&self) -> Result<Vec<u8>, String> {
        Python::with_gil(|py| {
            let state = self.step.call_method0(py, "snapshot_state").map_err(|e| describe(py, e))?;
            state.extract::<Vec<u8>>(py).map_err(|e| describe(py, e))
        })
    }

    fn restore_state(&mut self, state: &[u8]) -> Result<(), String> {
        Python::with_gil(|py| {
            let _restoring = Restoring::start(&self.declared);
            self.step.call_method1(py, "restore_state", (PyBytes::new(py, state),)).map_err(|e| describe(py, e))?;
            self.segment_process = segment_process(py, &self.step).map_err(|e| describe(py, e))?;
            Ok(())
        })
    }

    fn checkpoint_finished(&mut self, checkpoint_id: i64, completed: bool) {
        let method = if completed { "checkpoint_completed" } else { "checkpoint_aborted" };
        Python::with_gil(|py| {
            if let Err(e) = self.step.call_method1(py, method, (checkpoint_id,)) {
                crate::log!("a Python step's {method}({checkpoint_id}) failed: {}", describe(py, e));
            }
        });
    }
}

impl Drop for PythonStep {
    fn drop(&mut self) {
        Python::with_gil(|py| {
            if let Err(e) = self.step.call_method0(py, "close") {
                crate::log!("closing a Python step failed: {}", describe(py, e));
            }
        });
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::sync::Once;

    const SEGMENTS: &str = r#"
import json

from flink_bridge import sdk
from flink_bridge.sdk import EVENT_TIME, Message, current_key, map_cell, timers, value_cell

class Plain:
    def process(self, message):
        return [message, Message(message.payload + b"!", {"k": "v"}, message.timestamp + 1)]

class Loose:
    def process(self, message):
        return (Message(bytearray(message.payload), {}, 7) for _ in range(2))

class NotAList:
    def process(self, message):
        return "not messages"

class BadHeader:
    def process(self, message):
        return [Message(message.payload, {"k": 1}, 0)]

class Rejected(Exception):
    pass

class RejectsBad:
    def process(self, message):
        if message.payload == b"bad":
            raise Rejected("told to reject it")
        return [message]

    def watermark(self, timestamp):
        raise Rejected("told to reject the watermark")

class Counter:
    def __init__(self):
        self.seen = 0

    def process(self, message):
        self.seen += 1
        return [Message(str(self.seen).encode(), {}, 0)]

class Clock:
    def process(self, message):
        return [Message(str(sdk.current_time_millis()).encode(), {}, 0)]

# A message of over 100 KiB, much of it not ASCII, and segments that fail with it (the Python worker's tests run
# FailsOnRecord and FailsOnRestore too).
from tests.long_errors import LONG, FailsOnRecord, FailsOnRestore

class FailsOnConstruction:
    def __init__(self):
        raise RuntimeError(LONG)

    def process(self, message):
        return [message]

class CellCounter:
    """The native CellCounter (cells.rs) in Python: the same cells, answers and failure on a watermark of 42."""
    def __init__(self, ttl_ms=0):
        self.total = value_cell("total")
        self.seen = map_cell("seen", ttl_ms=ttl_ms)

    def process(self, message):
        if message.payload == b"clear":
            self.total.clear()
            self.seen.clear()
            total = 0
        else:
            total = int(self.total.get() or b"0") + 1
            self.total.set(str(total).encode())
            self.seen.put(message.payload, str(total).encode())
        seen = ",".join(f"{k.decode()}={v.decode()}" for k, v in self.seen.items())
        return [Message(f"total={total} seen={seen}".encode(), message.headers, message.timestamp)]

    def watermark(self, timestamp):
        if timestamp == 42:
            self.total.get()
        return []

class PickledCellCounter:
    """State of its own (pickled, as it has no snapshot()) beside a cell."""
    def __init__(self):
        self.records = 0
        self.total = value_cell("total")

    def process(self, message):
        self.records += 1
        total = int(self.total.get() or b"0") + 1
        self.total.set(str(total).encode())
        return [Message(f"records={self.records} total={total}".encode(), {}, 0)]

class DeclaresLate:
    def process(self, message):
        value_cell("late")
        return [message]

class DeclaresTwice:
    def __init__(self):
        self.one = value_cell("same")
        self.two = map_cell("same")

    def process(self, message):
        return [message]

class SetsAString:
    def __init__(self):
        self.cell = value_cell("text")

    def process(self, message):
        self.cell.set("not bytes")
        return [message]

class TimerStep:
    """The native TimerStep (steps.rs) in Python: the same commands in a record's "do" (set:e:5, delete:p:7, fail),
    the same firings (at 666 it fails), the same cell 'fired' unless cells is false, the same rearm_ms."""
    def __init__(self, rearm_ms=0, cells=True):
        self.timers = timers()
        self.fired = value_cell("fired") if cells else None
        self.rearm_ms = rearm_ms

    def process(self, message):
        try:
            document = json.loads(message.payload)
        except ValueError:
            document = {}
        for command in document.get("do", "").split():
            op, _, rest = command.partition(":")
            letter, _, at = rest.partition(":")
            if op in ("set", "delete"):
                # set_event_time, delete_processing_time, ...
                getattr(self.timers, f"{op}_{'processing' if letter == 'p' else 'event'}_time")(int(at))
            elif op == "fail":
                raise RuntimeError("told to fail")
            else:
                raise RuntimeError(f"no command {command}")
        return [message]

    def on_timer(self, timestamp, domain):
        if timestamp == 666:
            raise RuntimeError("told to fail at 666")
        before = (self.fired.get() or b"").decode() if self.fired else ""
        letter = "e" if domain == EVENT_TIME else "p"
        payload = json.dumps({"fired": timestamp, "domain": letter, "before": before}, separators=(",", ":"))
        if self.fired:
            self.fired.set((f"{before},{timestamp}" if before else str(timestamp)).encode())
        if self.rearm_ms > 0:
            self.timers.set(timestamp + self.rearm_ms, domain)
        return [Message(payload.encode(), {}, timestamp)]

class Timed:
    """Declares timers, and has no on_timer: a step that is refused."""
    def __init__(self):
        self.timers = timers()

    def process(self, message):
        return []

class Fired(Timed):
    def on_timer(self, timestamp, domain):
        return []

class PickledTimers(Fired):
    """State of its own (pickled) beside its timers: each record sets an event-time timer at its count."""
    records = 0

    def process(self, message):
        self.records += 1
        self.timers.set_event_time(self.records)
        return []

class TimersLate(Fired):
    def __init__(self):
        pass

    def process(self, message):
        timers()
        return []

class TimersOnce(Fired):
    """Declares timers when it is first built only."""
    built = 0

    def __init__(self):
        TimersOnce.built += 1
        if TimersOnce.built == 1:
            super().__init__()

class KeyEcho:
    """Answers a record and a watermark with what current_key() gives (its repr)."""
    def process(self, message):
        return [Message(b"record %r" % (current_key(),), {}, message.timestamp)]

    def watermark(self, timestamp):
        return [Message(b"watermark %r" % (current_key(),), {}, timestamp)]

class TimedKeyEcho(KeyEcho):
    """KeyEcho that sets an event-time timer at each record's timestamp; a firing answers with the key as the
    documented timers example has it (a header, decoded) and its repr."""
    def __init__(self):
        self.timers = timers()

    def process(self, message):
        self.timers.set_event_time(message.timestamp)
        return super().process(message)

    def on_timer(self, timestamp, domain):
        return [Message(b"timer %r" % (current_key(),), {"user": current_key().decode()}, timestamp)]

class TimersOnWatermark(Timed):
    def watermark(self, timestamp):
        self.timers.set_event_time(timestamp)
        return []

    def on_timer(self, timestamp, domain):
        return ["not a message"]
"#;

    /// The hosted Python step like the native TimerStep (steps.rs).
    pub const TIMER_STEP: &str = "hosted_segments.TimerStep";

    /// How the message of the segments that fail with a long one starts.
    pub const LONG_MESSAGE_START: &str = "told to fail with a long message:";

    /// Runs `build` as a worker without `--python-runtime` would: on this thread, the runtime is not there.
    pub fn without_runtime<T>(build: impl FnOnce() -> T) -> T {
        NO_RUNTIME.with(|no| no.set(true));
        let built = build();
        NO_RUNTIME.with(|no| no.set(false));
        built
    }

    /// Starts the runtime of this test process, once, with the segments above as the module `hosted_segments`.
    pub fn start_runtime() {
        static START: Once = Once::new();
        START.call_once(|| {
            let dir = std::env::temp_dir().join(format!("flink-bridge-hosted-segments-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("hosted_segments.py"), SEGMENTS).unwrap();
            start(PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../python")), &[dir]).unwrap();
        });
    }

    fn step(step_type: &str) -> Box<dyn Step> {
        start_runtime();
        let context = BuildContext::new(crate::cells::Cells::new(), "s", true);
        build("s", &format!("hosted_segments.{step_type}"), "", &context).expect("the runtime is loaded").unwrap()
    }

    fn run(step: &mut dyn Step, payload: &str, clock: Option<i64>) -> Result<Vec<Record>, String> {
        let mut out = Vec::new();
        let input = Record { payload: payload.as_bytes().to_vec(), headers: IndexMap::new(), timestamp: 5 };
        step.process(input, &StepContext { clock }, &mut |record| out.push(record)).map_err(|e| e.to_string())?;
        Ok(out)
    }

    fn payloads(records: &[Record]) -> Vec<String> {
        records.iter().map(|r| String::from_utf8(r.payload.clone()).unwrap()).collect()
    }

    #[test]
    fn a_segments_plain_messages_become_records_as_they_are() {
        let out = run(step("Plain").as_mut(), "a", None).unwrap();
        assert_eq!(payloads(&out), ["a", "a!"]);
        assert_eq!((out[0].timestamp, out[1].timestamp), (5, 6));
        assert_eq!(out[1].headers.get("k").map(String::as_str), Some("v"));
    }

    #[test]
    fn other_outputs_go_through_the_runtimes_checks() {
        let out = run(step("Loose").as_mut(), "b", None).unwrap();
        assert_eq!(payloads(&out), ["b", "b"]);
        assert_eq!(out[0].timestamp, 7);
        let error = run(step("NotAList").as_mut(), "c", None).unwrap_err();
        assert!(error.contains("process() returned a str, not a list of messages"), "{error}");
        let error = run(step("BadHeader").as_mut(), "d", None).unwrap_err();
        assert!(error.contains("header 'k': 1"), "{error}");
    }

    #[test]
    fn an_exception_is_an_error_of_its_class_qualified_with_its_module_unless_a_builtin() {
        let mut out = Vec::new();
        let rejected = step("RejectsBad").process(Record { payload: b"bad".to_vec(), ..Default::default() }, &StepContext { clock: None }, &mut |r| out.push(r));
        let rejected = rejected.unwrap_err();
        assert_eq!(rejected.class, "hosted_segments.Rejected");
        assert!(rejected.message.starts_with("told to reject it (File "), "{}", rejected.message);
        assert!(rejected.to_string().starts_with("hosted_segments.Rejected: told to reject it"), "{rejected}");
        let builtin = step("FailsOnRecord").process(Record::default(), &StepContext { clock: None }, &mut |r| out.push(r)).unwrap_err();
        assert_eq!(builtin.class, "RuntimeError");
    }

    #[test]
    fn a_segment_with_cells_pickled_as_its_state_gets_its_cells_back_when_restored() {
        use crate::cells::tests::{content_value, load_of};
        use crate::cells::Cells;
        start_runtime();
        let build_counter = |cells: &Cells| {
            cells.begin_build();
            let step = build("count", "hosted_segments.PickledCellCounter", "", &BuildContext::new(cells.clone(), "count", true)).unwrap().unwrap();
            cells.end_build().unwrap();
            step
        };
        let cells = Cells::new();
        let mut first = build_counter(&cells);
        cells.load(load_of(b"a", vec![content_value(0, b"1")]), true).unwrap();
        cells.enter(b"a", 0).unwrap();
        assert_eq!(payloads(&run(first.as_mut(), "x", None).unwrap()), ["records=1 total=2"]);
        cells.leave();
        let state = first.snapshot_state().unwrap();
        let holds = |text: &[u8]| state.windows(text.len()).any(|w| w == text);
        assert!(holds(b"flink_bridge.sdk") && holds(b"value_cell") && !holds(b"flink_bridge_worker_cells"), "the cell is pickled as flink_bridge.sdk.value_cell");

        let mut restored = build_counter(&cells);
        restored.restore_state(&state).unwrap();
        cells.enter(b"a", 0).unwrap();
        assert_eq!(payloads(&run(restored.as_mut(), "x", None).unwrap()), ["records=2 total=3"]);
        cells.leave();
    }

    #[test]
    fn a_segment_with_timers_pickled_as_its_state_gets_its_timers_back_when_restored() {
        use crate::timers::{tests::changes, Timers};
        use crate::proto::TimerOp;
        start_runtime();
        let timers = Timers::new();
        let context = BuildContext::new(crate::cells::Cells::new(), "t", true).with_timers(timers.clone(), 2);
        let build_step = || build("t", "hosted_segments.PickledTimers", "", &context).unwrap().unwrap();
        let mut first = build_step();
        timers.enter();
        run(first.as_mut(), "x", None).unwrap();
        timers.leave();
        assert_eq!(changes(&timers.take_changes().unwrap()), [(TimerOp::Set, 2, TimeDomain::EventTime, 1)]);
        let state = first.snapshot_state().unwrap();
        let holds = |text: &[u8]| state.windows(text.len()).any(|w| w == text);
        assert!(holds(b"flink_bridge.sdk") && holds(b"timers") && !holds(b"flink_bridge_worker_timers"), "the handle is pickled as flink_bridge.sdk.timers");

        let mut restored = build_step();
        restored.restore_state(&state).unwrap();
        timers.enter();
        run(restored.as_mut(), "x", None).unwrap();
        timers.leave();
        assert_eq!(changes(&timers.take_changes().unwrap()), [(TimerOp::Set, 2, TimeDomain::EventTime, 2)], "the restored instance sets its step's timers");

        // A step that declares no timers cannot take a state that holds them.
        let mut other = step("Counter");
        let error = other.restore_state(&state).unwrap_err();
        assert!(error.contains("the step's restored state holds timers(), which the step does not declare"), "{error}");
    }

    #[test]
    fn current_key_reads_the_key_from_the_cells_of_the_step_handling_an_input_and_gives_none_elsewhere() {
        use crate::cells::Cells;
        start_runtime();
        let cells = Cells::new();
        let mut echo = build("k", "hosted_segments.KeyEcho", "", &BuildContext::new(cells.clone(), "k", true)).unwrap().unwrap();
        cells.enter(b"a", 0).unwrap();
        assert_eq!(payloads(&run(echo.as_mut(), "x", None).unwrap()), ["record b'a'"]);
        Python::with_gil(|py| {
            let sdk = py.import("flink_bridge.sdk").unwrap();
            let function = sdk.getattr("current_key").unwrap();
            assert!(function.call0().unwrap().is_none(), "no step handles an input on this thread");
            assert!(function.is(py.import("flink_bridge.cells").unwrap().getattr("current_key").unwrap()));
            assert_eq!(function.getattr("__module__").unwrap().extract::<&str>().unwrap(), "flink_bridge.sdk");
            assert!(function.getattr("__doc__").unwrap().extract::<&str>().unwrap().starts_with("The key of the record"));
        });
        cells.leave();
        assert_eq!(payloads(&run(echo.as_mut(), "x", None).unwrap()), ["record None"]);
    }

    #[test]
    fn a_restored_segment_is_the_one_called() {
        let mut counter = step("Counter");
        run(counter.as_mut(), "x", None).unwrap();
        let state = counter.snapshot_state().unwrap();
        let mut restored = step("Counter");
        restored.restore_state(&state).unwrap();
        assert_eq!(payloads(&run(restored.as_mut(), "x", None).unwrap()), ["2"]);
    }

    #[test]
    fn the_sessions_clock_is_what_the_segment_reads() {
        let mut clock = step("Clock");
        for millis in [1_000, 1_000, 1_001] {
            assert_eq!(payloads(&run(clock.as_mut(), "t", Some(millis)).unwrap()), [millis.to_string()]);
        }
    }
}
