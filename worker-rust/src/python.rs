//! Python steps hosted in the worker: a step whose type is `module.Class` is built by the Python worker's own
//! runtime (`flink_bridge.segments.build_step`, from the folder `--python-runtime` names), so a segment written
//! for the prototype's worker runs unchanged, with the same checks of what it returns and the same state (its
//! `snapshot()`/`restore()`, else its pickled instance). The ring, the frames and the records stay native; only
//! the segment's own code runs in Python.
//!
//! One interpreter serves the process; a session with Python steps gets a process of its own (child), so its
//! interpreter serves that session alone. Each call still stamps the session's clock first
//! (`flink_bridge.sdk.stamp_clock`), where the runtime keeps it. A thread that
//! calls into Python is attached to the interpreter for as long as it serves (`attach_this_thread`): without it,
//! every call would create and destroy a Python thread state, and with it the memory of its frame stack (an mmap
//! and a munmap, and a TLB shootdown, per call).

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::OnceLock;

use indexmap::IndexMap;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::record::Record;
use crate::steps::{Emit, Step, StepContext};

/// What every Python step needs from the runtime, imported once.
struct Host {
    build_step: Py<PyAny>,
    message: Py<PyAny>,
    stamp_clock: Py<PyAny>,
}

static HOST: OnceLock<Host> = OnceLock::new();

/// Starts the interpreter with the Python runtime and the segments' folders on its path; an error names what
/// failed to load.
pub fn start(runtime: PathBuf, paths: &[PathBuf]) -> Result<(), String> {
    pyo3::prepare_freethreaded_python();
    let host = Python::with_gil(|py| -> PyResult<Host> {
        let sys_path: &PyList = py.import("sys")?.getattr("path")?.downcast()?;
        for (index, folder) in std::iter::once(&runtime).chain(paths).enumerate() {
            sys_path.insert(index, folder.to_string_lossy().as_ref())?;
        }
        let segments = py.import("flink_bridge.segments")?;
        let sdk = py.import("flink_bridge.sdk")?;
        Ok(Host {
            build_step: segments.getattr("build_step")?.into(),
            message: sdk.getattr("Message")?.into(),
            stamp_clock: sdk.getattr("stamp_clock")?.into(),
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

/// A step in Python, or None when the worker hosts no Python (no `--python-runtime`).
pub fn build(step_name: &str, step_type: &str, config_json: &str) -> Option<Result<Box<dyn Step>, String>> {
    let host = HOST.get()?;
    Some(Python::with_gil(|py| {
        host.build_step
            .call1(py, (step_name, step_type, config_json))
            .map(|step| Box::new(PythonStep { step }) as Box<dyn Step>)
            .map_err(|e| e.value(py).to_string())
    }))
}

struct PythonStep {
    /// The runtime's step: process(message, emit), on_watermark(timestamp, emit), snapshot_state(),
    /// restore_state(bytes), checkpoint_completed(id), checkpoint_aborted(id), close().
    step: Py<PyAny>,
}

fn host() -> &'static Host {
    HOST.get().expect("a Python step exists only once the runtime is loaded")
}

/// "Type: message" of a Python exception, with the last frame of its traceback when there is one.
fn describe(py: Python<'_>, error: PyErr) -> String {
    let kind = error.get_type(py).name().unwrap_or("Exception").to_string();
    let location = error
        .traceback(py)
        .and_then(|tb| tb.format().ok())
        .and_then(|text| text.lines().rev().find(|l| l.trim_start().starts_with("File ")).map(|l| format!(" ({})", l.trim())))
        .unwrap_or_default();
    format!("{kind}: {}{location}", error.value(py))
}

impl PythonStep {
    /// Calls `method(argument, outputs.append)` with the session's clock stamped, and emits what it appended; one
    /// turn on the GIL for all of it.
    fn call_emitting(&self, method: &str, argument: impl FnOnce(Python<'_>) -> PyResult<PyObject>, context: &StepContext,
                     emit: &mut Emit) -> Result<(), String> {
        Python::with_gil(|py| {
            let outputs = PyList::empty(py);
            let called = stamp(py, context)
                .and_then(|_| self.step.call_method1(py, method, (argument(py)?, outputs.getattr("append")?)));
            called.map_err(|e| describe(py, e))?;
            for output in outputs {
                emit(record(output).map_err(|e| describe(py, e))?);
            }
            Ok(())
        })
    }
}

fn stamp(py: Python<'_>, context: &StepContext) -> PyResult<()> {
    if let Some(millis) = context.clock {
        host().stamp_clock.call1(py, (millis,))?;
    }
    Ok(())
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
    fn process(&mut self, record: Record, context: &StepContext, emit: &mut Emit) -> Result<(), String> {
        self.call_emitting("process", |py| message(py, record), context, emit)
    }

    fn on_watermark(&mut self, timestamp: i64, context: &StepContext, emit: &mut Emit) -> Result<(), String> {
        self.call_emitting("on_watermark", |py| Ok(timestamp.into_py(py)), context, emit)
    }

    fn snapshot_state(&self) -> Result<Vec<u8>, String> {
        Python::with_gil(|py| {
            let state = self.step.call_method0(py, "snapshot_state").map_err(|e| describe(py, e))?;
            state.extract::<Vec<u8>>(py).map_err(|e| describe(py, e))
        })
    }

    fn restore_state(&mut self, state: &[u8]) -> Result<(), String> {
        Python::with_gil(|py| self.step.call_method1(py, "restore_state", (PyBytes::new(py, state),)).map(|_| ()).map_err(|e| describe(py, e)))
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
