//! The worker's control service (`flinkbridge.v1.BridgeControl`) and the router of every call: the secret
//! checked first, then the method. Sessions run on threads of this process: a shm session's serving loop on a
//! thread of its own (shm_loop), a streamed session on the async runtime (stream).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::Body;
use prost::Message;
use tokio::sync::watch;

use crate::grpc::{self, Code, Messages, Reply, Status};
use crate::proto;
use crate::ring::{self, constant_time_equal, RingFile};
use crate::session::{describe_key_group, KeyGroup, Session, StepSpec};
use crate::{log, secret, shm_loop, stream};

const CONTROL_SERVICE: &str = "flinkbridge.v1.BridgeControl";
const DATA_SERVICE: &str = "flinkbridge.v1.BridgeData";
const DEFAULT_LIVENESS_TIMEOUT_MS: u32 = 5000;
/// How long a session's data plane may take to end once asked (closed, or stopped).
const END_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a stopping worker still answers control calls once its sessions' data planes have ended.
const STOP_GRACE: Duration = Duration::from_secs(1);
/// The most state bytes one SnapshotState message carries.
const STATE_MESSAGE_BYTES: usize = 4 << 20;

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
    fn await_end(&self) {
        let deadline = Instant::now() + END_TIMEOUT;
        while !self.ended.load(Ordering::Acquire) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Some(thread) = self.thread.lock().unwrap().take().filter(|_| self.ended.load(Ordering::Acquire)) {
            let _ = thread.join();
        }
    }
}

pub struct Worker {
    pub id: String,
    ring_dir: PathBuf,
    secret: String,
    started: Instant,
    sessions: Mutex<HashMap<String, Arc<SessionHandle>>>,
    received: Mutex<BTreeMap<String, u64>>,
    stopping: AtomicBool,
    /// Set once the worker is asked to stop: wakes streams waiting for their next batch.
    pub stop_signal: watch::Sender<bool>,
}

impl Worker {
    pub fn new(ring_dir: PathBuf, secret: String) -> Arc<Worker> {
        Arc::new(Worker {
            id: format!("w{}", secret::random_hex(4)),
            ring_dir,
            secret,
            started: Instant::now(),
            sessions: Mutex::new(HashMap::new()),
            received: Mutex::new(BTreeMap::new()),
            stopping: AtomicBool::new(false),
            stop_signal: watch::channel(false).0,
        })
    }

    /// Every call: refused without the secret (saying nothing else), then routed by its path.
    pub async fn call(self: Arc<Self>, request: Request<Body>) -> Response<Reply> {
        let presented = request.headers().get(secret::METADATA).map(|v| v.as_bytes()).unwrap_or_default();
        if !constant_time_equal(presented, self.secret.as_bytes()) {
            return Reply::status(Status::new(Code::Unauthenticated, "the call does not carry this worker's control secret"));
        }
        let method = request.uri().path().trim_start_matches('/').to_string();
        let deadline = grpc::deadline(request.headers());
        let answer = self.route(&method, request);
        match deadline {
            Some(limit) => tokio::time::timeout(limit, answer).await.unwrap_or_else(|_| {
                Reply::status(Status::new(Code::DeadlineExceeded, format!("{method} did not finish within its deadline of {limit:?}")))
            }),
            None => answer.await,
        }
    }

    async fn route(self: &Arc<Self>, method: &str, request: Request<Body>) -> Response<Reply> {
        let (head, body) = request.into_parts();
        let mut messages = Messages::new(body);
        let Some((service, name)) = method.split_once('/') else {
            return Reply::status(Status::new(Code::Unimplemented, format!("no method {method}")));
        };
        let result = match (service, name) {
            (CONTROL_SERVICE, "OpenSession") => self.unary(method, &mut messages, |w, r| w.open_session(r)).await,
            (CONTROL_SERVICE, "NotifyCheckpoint") => self.unary(method, &mut messages, |w, r| w.notify_checkpoint(r)).await,
            (CONTROL_SERVICE, "CloseSession") => self.unary(method, &mut messages, |w, r| w.close_session(r)).await,
            (CONTROL_SERVICE, "Health") => self.unary(method, &mut messages, |w, _: proto::HealthRequest| Ok(w.health())).await,
            (CONTROL_SERVICE, "RestoreState") => self.restore_state(method, &mut messages).await,
            (CONTROL_SERVICE, "SnapshotState") => return self.snapshot_state(method, &mut messages).await,
            (DATA_SERVICE, "Exchange") => return stream::exchange(Arc::clone(self), method.to_string(), &head.headers, messages),
            ("flink_worker.FlinkWorkerService", _) => Err(Status::new(
                Code::Unimplemented,
                "the Rust worker does not serve the prototype's FlinkWorkerService (grpc_mode compat); use grpc_mode stream or shm",
            )),
            _ => Err(Status::new(Code::Unimplemented, format!("no method {method}"))),
        };
        result.unwrap_or_else(Reply::status)
    }

    /// Reads one request message, counting its bytes under `method`.
    pub async fn read<M: Message + Default>(&self, method: &str, messages: &mut Messages) -> Result<Option<M>, Status> {
        let Some(bytes) = messages.next().await? else { return Ok(None) };
        *self.received.lock().unwrap().entry(method.to_string()).or_insert(0) += bytes.len() as u64;
        M::decode(bytes).map(Some).map_err(|e| Status::new(Code::InvalidArgument, format!("{method}: the request cannot be parsed: {e}")))
    }

    async fn unary<Q: Message + Default + 'static, A: Message + Send + 'static>(
        self: &Arc<Self>,
        method: &str,
        messages: &mut Messages,
        handle: impl FnOnce(&Arc<Self>, Q) -> Result<A, Status> + Send + 'static,
    ) -> Result<Response<Reply>, Status> {
        let request = self.read(method, messages).await?.ok_or_else(|| Status::new(Code::InvalidArgument, format!("{method}: no request message")))?;
        let worker = Arc::clone(self);
        // The handlers may block (a session's lock, a ring being mapped, a data plane ending).
        let answer = tokio::task::spawn_blocking(move || handle(&worker, request))
            .await
            .map_err(|e| Status::new(Code::Internal, format!("{method} failed: {e}")))??;
        Ok(Reply::unary(&answer))
    }

    pub fn session(&self, session_id: &str) -> Result<Arc<SessionHandle>, Status> {
        self.sessions.lock().unwrap().get(session_id).cloned().ok_or_else(|| Status::new(Code::NotFound, format!("no open session {session_id}")))
    }

    fn open_session(self: &Arc<Self>, request: proto::OpenSessionRequest) -> Result<proto::OpenSessionResponse, Status> {
        let current = proto::ProtocolVersion::Current as i32;
        if request.protocol_version != current {
            return Err(Status::new(
                Code::FailedPrecondition,
                format!("protocol version {} is not supported; this worker speaks {current}", request.protocol_version),
            ));
        }
        let shm = match proto::TransportKind::from_i32(request.transport) {
            Some(proto::TransportKind::Shm) => true,
            Some(proto::TransportKind::Grpc) => false,
            _ => return Err(Status::new(Code::Unimplemented, format!("transport {} is not served by this worker", request.transport))),
        };
        if request.token.is_empty() {
            return Err(Status::new(Code::InvalidArgument, "a session needs a token"));
        }
        if self.stopping.load(Ordering::Acquire) {
            return Err(Status::new(Code::Unavailable, format!("worker {} is stopping, as asked", self.id)));
        }
        // 128 random bits: knowing the worker's id (Health tells it) must not name a session.
        let session_id = format!("{}-{}", self.id, secret::random_hex(16));
        let identity = request.identity.unwrap_or_default();
        let name = format!(
            "session {session_id} (job '{}', operator '{}', subtask {}/{})",
            identity.job_name, identity.operator_name, identity.subtask_index, identity.parallelism
        );
        let step_count = request.steps.len();
        let specs = request.steps.into_iter().map(|s| StepSpec { name: s.name, step_type: s.r#type, config_json: s.config_json }).collect();
        let logic = Session::new(name.clone(), specs).map_err(|e| Status::new(Code::InvalidArgument, format!("{name}: {e}")))?;
        let ring = if shm {
            let spec = request.ring.unwrap_or_default();
            let opened = ring::check_ring_path(&self.ring_dir, &spec.path).and_then(|path| RingFile::open(path, &request.token));
            let liveness = if spec.liveness_timeout_ms == 0 { DEFAULT_LIVENESS_TIMEOUT_MS } else { spec.liveness_timeout_ms };
            Some((opened.map_err(|e| Status::new(Code::FailedPrecondition, format!("{name}: {e}")))?, liveness))
        } else {
            None
        };
        let handle = Arc::new(SessionHandle {
            id: session_id.clone(),
            name: name.clone(),
            token: request.token,
            plane: if shm { Plane::Shm } else { Plane::Stream },
            logic: Mutex::new(logic),
            closing: AtomicBool::new(false),
            stop_asked: AtomicBool::new(false),
            ended: AtomicBool::new(!shm),
            thread: Mutex::new(None),
        });
        self.sessions.lock().unwrap().insert(session_id.clone(), Arc::clone(&handle));
        if let Some((ring, liveness)) = ring {
            let thread = shm_loop::start(Arc::clone(self), Arc::clone(&handle), ring, liveness as i64);
            *handle.thread.lock().unwrap() = Some(thread);
        }
        log!("opened {name} with {} step(s) over {}", step_count, if shm { "shm" } else { "grpc" });
        Ok(proto::OpenSessionResponse { session_id, protocol_version: current, worker_id: self.id.clone() })
    }

    async fn restore_state(self: &Arc<Self>, method: &str, messages: &mut Messages) -> Result<Response<Reply>, Status> {
        let mut assembler = Assembler::default();
        let mut session_id: Option<String> = None;
        while let Some(request) = self.read::<proto::RestoreStateRequest>(method, messages).await? {
            if session_id.as_deref().is_some_and(|id| id != request.session_id) {
                return Err(Status::new(Code::InvalidArgument, format!("one RestoreState stream names sessions {} and {}", session_id.unwrap(), request.session_id)));
            }
            session_id = Some(request.session_id);
            for piece in request.states {
                assembler.add(piece).map_err(|e| Status::new(Code::InvalidArgument, e))?;
            }
        }
        let states = assembler.finish().map_err(|e| Status::new(Code::InvalidArgument, e))?;
        let handle = self.session(&session_id.unwrap_or_default())?;
        let restored = handle.logic.lock().unwrap().restore(states);
        restored.map_err(|e| Status::new(Code::InvalidArgument, format!("{}: cannot restore its state: {e}", handle.name)))?;
        Ok(Reply::unary(&proto::Ack {}))
    }

    async fn snapshot_state(self: &Arc<Self>, method: &str, messages: &mut Messages) -> Response<Reply> {
        let request: proto::SnapshotStateRequest = match self.read(method, messages).await {
            Ok(Some(request)) => request,
            Ok(None) => return Reply::status(Status::new(Code::InvalidArgument, format!("{method}: no request message"))),
            Err(status) => return Reply::status(status),
        };
        let handle = match self.session(&request.session_id) {
            Ok(handle) => handle,
            Err(status) => return Reply::status(status),
        };
        let taken = handle.logic.lock().unwrap().snapshot();
        let states = match taken {
            Ok(states) => states,
            Err(e) => return Reply::status(Status::new(Code::Internal, format!("{}: its state cannot be taken: {e}", handle.name))),
        };
        let (mut writer, response) = Reply::stream();
        tokio::spawn(async move {
            // Each message is sent once flow control takes the last, so a large state is never buffered twice.
            for pieces in state_messages(&states) {
                if writer.send(&proto::SnapshotStateResponse { states: pieces }).await.is_err() {
                    return;
                }
            }
            writer.finish(Status::new(Code::Ok, "")).await;
        });
        response
    }

    fn notify_checkpoint(self: &Arc<Self>, request: proto::CheckpointNotification) -> Result<proto::Ack, Status> {
        let handle = self.session(&request.session_id)?;
        handle.logic.lock().unwrap().checkpoint_finished(request.checkpoint_id, request.completed);
        Ok(proto::Ack {})
    }

    fn close_session(self: &Arc<Self>, request: proto::SessionRef) -> Result<proto::Ack, Status> {
        if let Some(handle) = self.sessions.lock().unwrap().remove(&request.session_id) {
            self.close(&handle);
            log!("closed {}", handle.name);
        }
        Ok(proto::Ack {})
    }

    fn health(&self) -> proto::HealthResponse {
        proto::HealthResponse {
            worker_id: self.id.clone(),
            open_sessions: self.sessions.lock().unwrap().len() as u32,
            uptime_millis: self.started.elapsed().as_millis() as i64,
            received_bytes: self.received.lock().unwrap().iter().map(|(k, v)| (k.clone(), *v)).collect(),
        }
    }

    /// A session's data plane ended by itself (its bridge gone, its ring corrupt, its stream broken): the session
    /// is dropped with its instances and state.
    pub fn end(&self, session_id: &str, why: &str) {
        let removed = self.sessions.lock().unwrap().remove(session_id);
        if let Some(handle) = removed {
            log!("{}: ended: {why}", handle.name);
            handle.logic.lock().unwrap().close();
        }
    }

    /// Stops a session's data plane and drops its logic. A stream is not waited for: the bridge completes it
    /// after CloseSession (or its connection ends), and then it finds the session gone.
    fn close(&self, handle: &SessionHandle) {
        handle.closing.store(true, Ordering::Release);
        if matches!(handle.plane, Plane::Shm) {
            handle.await_end();
        }
        handle.logic.lock().unwrap().close();
    }

    /// SIGTERM, a request to stop (an upgrade, the TaskManager releasing the worker): no new session opens,
    /// each open one answers the inputs it has read and ends as stopped (its ring's closed flag, or its stream
    /// completed), which tells its bridge to move it to a new worker without restarting the job.
    pub fn stop_as_asked(&self) {
        self.stopping.store(true, Ordering::Release);
        let handles: Vec<_> = self.sessions.lock().unwrap().values().cloned().collect();
        for handle in &handles {
            handle.stop_asked.store(true, Ordering::Release);
        }
        self.stop_signal.send_replace(true);
        for handle in &handles {
            handle.await_end();
        }
        if !handles.is_empty() {
            // A bridge that took a barrier's answer just before the end still takes that barrier's state.
            std::thread::sleep(STOP_GRACE);
        }
        self.sessions.lock().unwrap().clear();
    }

    /// Any other end of the worker: each session's data plane stops and says the worker left.
    pub fn close_all(&self) {
        let handles: Vec<_> = self.sessions.lock().unwrap().drain().map(|(_, h)| h).collect();
        for handle in handles {
            self.close(&handle);
        }
    }
}

/// The states of a snapshot as SnapshotState messages of at most STATE_MESSAGE_BYTES of state each, every
/// piece but a key group's last marked `continued`.
fn state_messages(states: &[(KeyGroup, Vec<u8>)]) -> Vec<Vec<proto::KeyGroupState>> {
    let mut messages = Vec::new();
    let (mut message, mut size) = (Vec::new(), 0);
    for (key_group, state) in states {
        let mut offset = 0;
        loop {
            let end = state.len().min(offset + STATE_MESSAGE_BYTES - size);
            message.push(proto::KeyGroupState { key_group: *key_group, state: state[offset..end].to_vec().into(), continued: end < state.len() });
            size += end - offset;
            offset = end;
            if size >= STATE_MESSAGE_BYTES {
                messages.push(std::mem::take(&mut message));
                size = 0;
            }
            if offset >= state.len() {
                break;
            }
        }
    }
    if !message.is_empty() {
        messages.push(message);
    }
    messages
}

/// Joins the pieces of a RestoreState stream back into each key group's state, refusing pieces that do not
/// make whole states.
#[derive(Default)]
struct Assembler {
    states: BTreeMap<KeyGroup, Vec<u8>>,
    open: Option<(KeyGroup, Vec<u8>)>,
}

impl Assembler {
    fn add(&mut self, piece: proto::KeyGroupState) -> Result<(), String> {
        let key_group = piece.key_group;
        let (open_group, mut bytes) = match self.open.take() {
            Some((open, _)) if open != key_group => return Err(incomplete(open)),
            Some(open) => open,
            None if self.states.contains_key(&key_group) => return Err(format!("key group {} given twice", describe_key_group(key_group))),
            None => (key_group, Vec::new()),
        };
        bytes.extend_from_slice(&piece.state);
        if piece.continued {
            self.open = Some((open_group, bytes));
        } else {
            self.states.insert(open_group, bytes);
        }
        Ok(())
    }

    fn finish(self) -> Result<BTreeMap<KeyGroup, Vec<u8>>, String> {
        match self.open {
            Some((open, _)) => Err(incomplete(open)),
            None => Ok(self.states),
        }
    }
}

fn incomplete(key_group: KeyGroup) -> String {
    format!("the state of key group {} ends without its last piece", describe_key_group(key_group))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_state_goes_in_pieces_that_join_again() {
        let big = vec![7u8; STATE_MESSAGE_BYTES + 100];
        let states = vec![(Some(1), big.clone()), (Some(2), vec![1, 2, 3])];
        let messages = state_messages(&states);
        assert_eq!(messages.len(), 2);
        let mut assembler = Assembler::default();
        for piece in messages.into_iter().flatten() {
            assembler.add(piece).unwrap();
        }
        let joined = assembler.finish().unwrap();
        assert_eq!(joined[&Some(1)], big);
        assert_eq!(joined[&Some(2)], vec![1, 2, 3]);
    }

    #[test]
    fn pieces_that_do_not_make_whole_states_are_refused() {
        let piece = |kg: u32, continued| proto::KeyGroupState { key_group: Some(kg), state: vec![1].into(), continued };
        let mut twice = Assembler::default();
        twice.add(piece(1, false)).unwrap();
        assert!(twice.add(piece(1, false)).unwrap_err().contains("given twice"));
        let mut interleaved = Assembler::default();
        interleaved.add(piece(1, true)).unwrap();
        assert!(interleaved.add(piece(2, false)).unwrap_err().contains("without its last piece"));
        let mut unfinished = Assembler::default();
        unfinished.add(piece(1, true)).unwrap();
        assert!(unfinished.finish().is_err());
    }
}
