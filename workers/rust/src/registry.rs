//! What the control service shares with the data planes: the sessions this process serves, the bytes received
//! per method, the signal that the worker is asked to stop, and what a panic that ends a session said. A data
//! plane (shm_loop, stream) sees the worker through this alone, so it does not depend on the control service that
//! starts it.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use prost::Message;
use tokio::sync::watch;

use crate::grpc::{Code, Messages, Status};
use crate::log;
use crate::session::Session;

/// How long a session's data plane may take to end once asked (closed, or stopped).
pub const END_TIMEOUT: Duration = Duration::from_secs(5);

pub enum Plane {
    Shm,
    Stream,
}

/// The worker's view of one session: its logic, its data plane, and what its stream is authenticated with.
pub struct SessionHandle {
    pub id: String,
    pub name: String,
    pub token: String,
    pub plane: Plane,
    pub logic: Mutex<Session>,
    /// CloseSession came (or the worker ends): the data plane stops and closes its ring as left.
    pub closing: AtomicBool,
    /// The worker is asked to stop: the data plane answers what it read, then ends as stopped.
    pub stop_asked: AtomicBool,
    /// The data plane has ended (its thread returned, or its stream ended).
    pub ended: AtomicBool,
    pub thread: Mutex<Option<JoinHandle<()>>>,
}

impl SessionHandle {
    /// A session whose data plane has not started: a ring's starts with its thread, a stream's with its stream.
    pub fn new(id: String, name: String, token: String, plane: Plane, logic: Session) -> SessionHandle {
        let ended = AtomicBool::new(matches!(plane, Plane::Stream));
        SessionHandle {
            id,
            name,
            token,
            plane,
            logic: Mutex::new(logic),
            closing: AtomicBool::new(false),
            stop_asked: AtomicBool::new(false),
            ended,
            thread: Mutex::new(None),
        }
    }

    /// Drops the session's instances and state; also after a panic that held its logic poisoned the lock, as the
    /// session is over then.
    pub fn close_logic(&self) {
        self.logic.lock().unwrap_or_else(PoisonError::into_inner).close();
    }

    pub fn await_end(&self) {
        let deadline = Instant::now() + END_TIMEOUT;
        while !self.ended.load(Ordering::Acquire) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Some(thread) = self.thread.lock().unwrap().take().filter(|_| self.ended.load(Ordering::Acquire)) {
            let _ = thread.join();
        }
    }
}

pub struct Registry {
    /// The open sessions served in this process, by session id.
    pub sessions: Mutex<HashMap<String, Arc<SessionHandle>>>,
    received: Mutex<BTreeMap<String, u64>>,
    /// Set once the worker is asked to stop: wakes streams waiting for their next batch.
    pub stop_signal: watch::Sender<bool>,
    /// This process serves one session (for a parent worker) and exits when it ends.
    one_session: bool,
}

impl Registry {
    pub fn new(one_session: bool) -> Registry {
        Registry { sessions: Mutex::new(HashMap::new()), received: Mutex::new(BTreeMap::new()), stop_signal: watch::channel(false).0, one_session }
    }

    pub fn session(&self, session_id: &str) -> Result<Arc<SessionHandle>, Status> {
        self.sessions.lock().unwrap().get(session_id).cloned().ok_or_else(|| Status::new(Code::NotFound, format!("no open session {session_id}")))
    }

    /// Adds to the bytes received by `method`, as Health reports them.
    pub fn count_received(&self, method: &str, bytes: u64) {
        // Called per message or forwarded chunk: the method's name is copied only the first time it is seen.
        let mut received = self.received.lock().unwrap();
        match received.get_mut(method) {
            Some(total) => *total += bytes,
            None => {
                received.insert(method.to_string(), bytes);
            }
        }
    }

    /// The bytes received so far, by method.
    pub fn received_bytes(&self) -> HashMap<String, u64> {
        self.received.lock().unwrap().iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// Reads one request message, counting its bytes under `method`.
    pub async fn read<M: Message + Default>(&self, method: &str, messages: &mut Messages) -> Result<Option<M>, Status> {
        let Some(bytes) = messages.next().await? else { return Ok(None) };
        self.count_received(method, bytes.len() as u64);
        M::decode(bytes).map(Some).map_err(|e| Status::new(Code::InvalidArgument, format!("{method}: the request cannot be parsed: {e}")))
    }

    /// A session's data plane ended by itself (its bridge gone, its ring corrupt, its stream broken): the session
    /// is dropped with its instances and state.
    pub fn end(&self, session_id: &str, why: &str) {
        let removed = self.sessions.lock().unwrap().remove(session_id);
        if let Some(handle) = removed {
            log!("{}: ended: {why}", handle.name);
            handle.close_logic();
            self.exit_if_one_session();
        }
    }

    /// A process serving one session for its parent exits once that session is over (after its last answer).
    pub fn exit_if_one_session(&self) {
        if self.one_session {
            std::thread::spawn(|| {
                std::thread::sleep(Duration::from_millis(200));
                std::process::exit(0)
            });
        }
    }
}

/// Why a session ended whose data plane panicked, with what the panic said.
pub fn why_panicked(payload: &(dyn Any + Send)) -> String {
    let said = payload.downcast_ref::<&str>().copied().or_else(|| payload.downcast_ref::<String>().map(String::as_str));
    format!("serving it panicked: {}", said.unwrap_or("no message"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::session::tests::spec;
    use crate::session::StepSpec;
    use crate::steps::ECHO_TYPE;

    /// An open session of one echo step, registered as the control service registers one.
    pub(crate) fn echo_session(registry: &Registry, id: &str, plane: Plane) -> Arc<SessionHandle> {
        open_session(registry, id, plane, vec![spec("echo", ECHO_TYPE, "{}")])
    }

    /// An open session of these steps, registered as the control service registers one.
    pub(crate) fn open_session(registry: &Registry, id: &str, plane: Plane, steps: Vec<StepSpec>) -> Arc<SessionHandle> {
        open(registry, id, plane, steps, false)
    }

    /// An open session of these steps whose stream is keyed.
    pub(crate) fn open_keyed_session(registry: &Registry, id: &str, plane: Plane, steps: Vec<StepSpec>) -> Arc<SessionHandle> {
        open(registry, id, plane, steps, true)
    }

    fn open(registry: &Registry, id: &str, plane: Plane, steps: Vec<StepSpec>, keyed: bool) -> Arc<SessionHandle> {
        let logic = Session::open(id.into(), steps, keyed).unwrap();
        let handle = Arc::new(SessionHandle::new(id.into(), id.into(), "token".into(), plane, logic));
        registry.sessions.lock().unwrap().insert(id.into(), Arc::clone(&handle));
        handle
    }

    /// Poisons the session's logic as a panic that held it does (a step's, on a control call): its data plane
    /// panics at its next input.
    pub(crate) fn poison(handle: &Arc<SessionHandle>) {
        let held = Arc::clone(handle);
        let _ = std::thread::spawn(move || {
            let _logic = held.logic.lock().unwrap();
            panic!("a step panicked");
        })
        .join();
    }
}
