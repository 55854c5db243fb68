//! The worker's control service (`flinkbridge.v1.BridgeControl`) and the router of every call: the secret
//! checked first, then the method. Sessions of built-in steps run on threads of this process: a shm session's
//! serving loop on a thread of its own (shm_loop), a streamed session on the async runtime (stream). A session
//! with Python steps (or a `window` hosting a Python aggregate) runs in a process of its own (child), to which its
//! calls are handed on.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::Body;
use prost::Message;

use crate::grpc::{self, Code, Messages, Reply, Status};
use crate::proto;
use crate::registry::{Plane, Registry, SessionHandle, END_TIMEOUT};
use crate::ring::{self, constant_time_equal, RingFile};
use crate::session::{describe_key_group, KeyGroup, Refused, Session, StepSpec};
use crate::child::Child;
use crate::{catalog, log, secret, shm_loop, stream};

const CONTROL_SERVICE: &str = "flinkbridge.v1.BridgeControl";
const DATA_SERVICE: &str = "flinkbridge.v1.BridgeData";
const DEFAULT_LIVENESS_TIMEOUT_MS: u32 = 5000;
/// How long a stopping worker still answers control calls once its sessions' data planes have ended.
const STOP_GRACE: Duration = Duration::from_secs(1);
/// How long a session's own process may take to stop as asked: its data plane, then its grace for control calls.
const CHILD_STOP_TIMEOUT: Duration = Duration::from_secs(8);
/// The most state bytes one SnapshotState message carries.
const STATE_MESSAGE_BYTES: usize = 4 << 20;

pub struct Worker {
    pub id: String,
    ring_dir: PathBuf,
    secret: String,
    started: Instant,
    /// The sessions served in this process, as their data planes see them too.
    registry: Arc<Registry>,
    stopping: AtomicBool,
    /// Sessions served by a process of their own (Python steps), by session id.
    children: Mutex<HashMap<String, Arc<Child>>>,
    /// How to start such a process: this worker's arguments for one session; None where sessions with Python
    /// steps are served here (a session's own process) or fail there (no Python runtime given).
    child_args: Option<Vec<String>>,
}

impl Worker {
    pub fn new(ring_dir: PathBuf, secret: String, one_session: bool, child_args: Option<Vec<String>>) -> Arc<Worker> {
        Arc::new(Worker {
            id: format!("w{}", secret::random_hex(4)),
            ring_dir,
            secret,
            started: Instant::now(),
            registry: Arc::new(Registry::new(one_session)),
            stopping: AtomicBool::new(false),
            children: Mutex::new(HashMap::new()),
            child_args,
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
        match self.handed_on(method, &head.headers, messages).await {
            Ok(response) => return response,
            Err(unread) => messages = unread,
        }
        let result = match (service, name) {
            (CONTROL_SERVICE, "OpenSession") => self.open_session_call(method, &head.headers, &mut messages).await,
            (CONTROL_SERVICE, "NotifyCheckpoint") => self.unary(method, &mut messages, |w, r| w.notify_checkpoint(r)).await,
            (CONTROL_SERVICE, "CloseSession") => self.unary(method, &mut messages, |w, r| w.close_session(r)).await,
            (CONTROL_SERVICE, "Health") => self.unary(method, &mut messages, |w, _: proto::HealthRequest| Ok(w.health())).await,
            (CONTROL_SERVICE, "RestoreState") => self.restore_state(method, &mut messages).await,
            (CONTROL_SERVICE, "SnapshotState") => return self.snapshot_state(method, &mut messages).await,
            (DATA_SERVICE, "Exchange") => return stream::exchange(Arc::clone(&self.registry), method.to_string(), &head.headers, messages),
            ("flink_worker.FlinkWorkerService", _) => Err(Status::new(
                Code::Unimplemented,
                "the Rust worker does not serve the prototype's FlinkWorkerService (grpc_mode compat); use grpc_mode stream or shm",
            )),
            _ => Err(Status::new(Code::Unimplemented, format!("no method {method}"))),
        };
        result.unwrap_or_else(Reply::status)
    }

    /// A call of a session that runs in a process of its own, handed on to it (a CloseSession also releases
    /// it); or the call's messages back, as they were, for this process to serve.
    async fn handed_on(self: &Arc<Self>, method: &str, headers: &http::HeaderMap, mut messages: Messages) -> Result<Response<Reply>, Messages> {
        if self.children.lock().unwrap().is_empty() {
            return Err(messages);
        }
        let session_id = if method == format!("{DATA_SERVICE}/Exchange") {
            headers.get(stream::SESSION_KEY).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
        } else if matches!(method.rsplit('/').next(), Some("NotifyCheckpoint" | "CloseSession" | "SnapshotState" | "RestoreState")) {
            // Every request of these names its session in field 1, as SessionRef does.
            match messages.next().await {
                Ok(Some(first)) => {
                    messages.unread(&first);
                    proto::SessionRef::decode(first).map(|r| r.session_id).unwrap_or_default()
                }
                _ => return Err(messages),
            }
        } else {
            return Err(messages);
        };
        let Some(child) = self.children.lock().unwrap().get(&session_id).cloned() else { return Err(messages) };
        let registry = Arc::clone(&self.registry);
        let counted_as = method.to_string();
        let body = messages.into_body(move |bytes| registry.count_received(&counted_as, bytes));
        let response = child.forward(method, headers, body).await;
        if method.ends_with("/CloseSession") {
            // The child exits once its session is closed; its reaper sees it go.
            self.children.lock().unwrap().remove(&session_id);
        }
        Ok(Reply::forwarded(response))
    }

    /// OpenSession: served here, or by a new process of its own when the session runs Python (`catalog::runs_python`).
    async fn open_session_call(self: &Arc<Self>, method: &str, headers: &http::HeaderMap, messages: &mut Messages) -> Result<Response<Reply>, Status> {
        let request: proto::OpenSessionRequest = self.registry.read(method, messages).await?.ok_or_else(|| Status::new(Code::InvalidArgument, format!("{method}: no request message")))?;
        let has_python = request.steps.iter().any(|s| catalog::runs_python(&s.r#type, &s.config_json));
        let child_args = match &self.child_args {
            Some(args) if has_python => args.clone(),
            _ => {
                let worker = Arc::clone(self);
                return blocking(method, move || worker.open_session(request)).await.map(|answer| Reply::unary(&answer));
            }
        };
        if self.stopping.load(Ordering::Acquire) {
            return Err(Status::new(Code::Unavailable, format!("worker {} is stopping, as asked", self.id)));
        }
        let mut child = Child::start(child_args).await?;
        if request.transport == proto::TransportKind::Shm as i32 {
            child.ring = request.ring.as_ref().map(|r| PathBuf::from(&r.path));
        }
        let (head, body) = child.forward(method, headers, Body::from(grpc::frame(&request))).await.into_parts();
        let failed = head.headers.get("grpc-status").is_some_and(|code| code != "0");
        let opened = if failed { None } else { hyper::body::to_bytes(body).await.ok() }
            .filter(|bytes| bytes.len() > 5)
            .and_then(|bytes| proto::OpenSessionResponse::decode(bytes.slice(5..)).ok());
        let Some(opened) = opened else {
            child.end(libc::SIGKILL, Duration::ZERO);
            return Ok(Response::from_parts(head, Reply::Unary { message: None, trailers: None }));
        };
        child.serves(&opened.session_id);
        let child = Arc::new(child);
        self.children.lock().unwrap().insert(opened.session_id.clone(), Arc::clone(&child));
        self.reap(opened.session_id.clone(), child);
        Ok(Reply::unary(&opened))
    }

    /// Waits for a session's process to exit; one that exits while its session is still open (it crashed, or was
    /// killed) ends the session, and its ring is closed for the bridge to see at once.
    fn reap(self: &Arc<Self>, session_id: String, child: Arc<Child>) {
        let worker = Arc::clone(self);
        std::thread::Builder::new()
            .name(format!("reap-{}", child.pid))
            .spawn(move || {
                let status = child.wait();
                if worker.children.lock().unwrap().remove(&session_id).is_some() {
                    log!("session {session_id}: ended: its process {} exited ({status:?})", child.pid);
                    if let Some(ring) = &child.ring {
                        ring::mark_closed(ring);
                    }
                }
            })
            .expect("starting a reaper thread");
    }

    async fn unary<Q: Message + Default + 'static, A: Message + Send + 'static>(
        self: &Arc<Self>,
        method: &str,
        messages: &mut Messages,
        handle: impl FnOnce(&Arc<Self>, Q) -> Result<A, Status> + Send + 'static,
    ) -> Result<Response<Reply>, Status> {
        let request = self.registry.read(method, messages).await?.ok_or_else(|| Status::new(Code::InvalidArgument, format!("{method}: no request message")))?;
        let worker = Arc::clone(self);
        blocking(method, move || handle(&worker, request)).await.map(|answer| Reply::unary(&answer))
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
        let specs = request.steps.into_iter().map(step_spec).collect::<Result<_, _>>().map_err(|e| Status::new(Code::InvalidArgument, format!("{name}: {e}")))?;
        let logic = Session::open(name.clone(), specs, request.keyed).map_err(|refused| match refused {
            Refused::Steps(e) => Status::new(Code::InvalidArgument, format!("{name}: {e}")),
            Refused::CellsWithoutKey(e) | Refused::TimersWithoutKey(e) => Status::new(Code::FailedPrecondition, format!("{name}: {e}")),
        })?;
        let cells = logic.cell_declarations().iter().map(|d| d.to_proto()).collect();
        let timers = logic.has_timers();
        let ring = if shm {
            let spec = request.ring.unwrap_or_default();
            let opened = ring::check_ring_path(&self.ring_dir, &spec.path).and_then(|path| RingFile::open(path, &request.token));
            let liveness = if spec.liveness_timeout_ms == 0 { DEFAULT_LIVENESS_TIMEOUT_MS } else { spec.liveness_timeout_ms };
            Some((opened.map_err(|e| Status::new(Code::FailedPrecondition, format!("{name}: {e}")))?, liveness))
        } else {
            None
        };
        let plane = if shm { Plane::Shm } else { Plane::Stream };
        let handle = Arc::new(SessionHandle::new(session_id.clone(), name.clone(), request.token, plane, logic));
        self.registry.sessions.lock().unwrap().insert(session_id.clone(), Arc::clone(&handle));
        if let Some((ring, liveness)) = ring {
            let thread = shm_loop::start(Arc::clone(&self.registry), Arc::clone(&handle), ring, liveness as i64);
            *handle.thread.lock().unwrap() = Some(thread);
        }
        log!("opened {name} with {} step(s){} over {}", step_count, if request.keyed { ", keyed" } else { "" }, if shm { "shm" } else { "grpc" });
        Ok(proto::OpenSessionResponse { session_id, protocol_version: current, worker_id: self.id.clone(), cells, timers })
    }

    async fn restore_state(self: &Arc<Self>, method: &str, messages: &mut Messages) -> Result<Response<Reply>, Status> {
        let mut assembler = Assembler::default();
        let mut session_id: Option<String> = None;
        while let Some(request) = self.registry.read::<proto::RestoreStateRequest>(method, messages).await? {
            if session_id.as_deref().is_some_and(|id| id != request.session_id) {
                return Err(Status::new(Code::InvalidArgument, format!("one RestoreState stream names sessions {} and {}", session_id.unwrap(), request.session_id)));
            }
            session_id = Some(request.session_id);
            for piece in request.states {
                assembler.add(piece).map_err(|e| Status::new(Code::InvalidArgument, e))?;
            }
        }
        let states = assembler.finish().map_err(|e| Status::new(Code::InvalidArgument, e))?;
        let handle = self.registry.session(&session_id.unwrap_or_default())?;
        let restored = handle.logic.lock().unwrap().restore(states);
        restored.map_err(|e| Status::new(Code::InvalidArgument, format!("{}: cannot restore its state: {e}", handle.name)))?;
        Ok(Reply::unary(&proto::Ack {}))
    }

    async fn snapshot_state(self: &Arc<Self>, method: &str, messages: &mut Messages) -> Response<Reply> {
        let request: proto::SnapshotStateRequest = match self.registry.read(method, messages).await {
            Ok(Some(request)) => request,
            Ok(None) => return Reply::status(Status::new(Code::InvalidArgument, format!("{method}: no request message"))),
            Err(status) => return Reply::status(status),
        };
        let handle = match self.registry.session(&request.session_id) {
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
        let handle = self.registry.session(&request.session_id)?;
        handle.logic.lock().unwrap().checkpoint_finished(request.checkpoint_id, request.completed);
        Ok(proto::Ack {})
    }

    fn close_session(self: &Arc<Self>, request: proto::SessionRef) -> Result<proto::Ack, Status> {
        if let Some(handle) = self.registry.sessions.lock().unwrap().remove(&request.session_id) {
            self.close(&handle);
            log!("closed {}", handle.name);
            self.registry.exit_if_one_session();
        }
        Ok(proto::Ack {})
    }

    fn health(&self) -> proto::HealthResponse {
        proto::HealthResponse {
            worker_id: self.id.clone(),
            open_sessions: (self.registry.sessions.lock().unwrap().len() + self.children.lock().unwrap().len()) as u32,
            uptime_millis: self.started.elapsed().as_millis() as i64,
            received_bytes: self.registry.received_bytes(),
        }
    }

    /// Stops a session's data plane and drops its logic. A stream is not waited for: the bridge completes it
    /// after CloseSession (or its connection ends), and then it finds the session gone.
    fn close(&self, handle: &SessionHandle) {
        handle.closing.store(true, Ordering::Release);
        if matches!(handle.plane, Plane::Shm) {
            handle.await_end();
        }
        handle.close_logic();
    }

    /// SIGTERM, a request to stop (an upgrade, the TaskManager releasing the worker): no new session opens,
    /// each open one answers the inputs it has read and ends as stopped (its ring's closed flag, or its stream
    /// completed), which tells its bridge to move it to a new worker without restarting the job.
    pub fn stop_as_asked(&self) {
        self.stopping.store(true, Ordering::Release);
        let handles: Vec<_> = self.registry.sessions.lock().unwrap().values().cloned().collect();
        for handle in &handles {
            handle.stop_asked.store(true, Ordering::Release);
        }
        self.registry.stop_signal.send_replace(true);
        // A session's own process stops as asked too; this one answers its calls until it has exited.
        self.end_children(libc::SIGTERM, CHILD_STOP_TIMEOUT);
        for handle in &handles {
            handle.await_end();
        }
        if !handles.is_empty() {
            // A bridge that took a barrier's answer just before the end still takes that barrier's state.
            std::thread::sleep(STOP_GRACE);
        }
        self.registry.sessions.lock().unwrap().clear();
    }

    /// Any other end of the worker: each session's data plane stops and says the worker left.
    pub fn close_all(&self) {
        self.end_children(libc::SIGINT, END_TIMEOUT);
        let handles: Vec<_> = self.registry.sessions.lock().unwrap().drain().map(|(_, h)| h).collect();
        for handle in handles {
            self.close(&handle);
        }
    }
}

impl Worker {
    fn end_children(&self, signal: libc::c_int, limit: Duration) {
        let children: Vec<_> = self.children.lock().unwrap().values().cloned().collect();
        std::thread::scope(|scope| {
            for child in &children {
                scope.spawn(move || child.end(signal, limit));
            }
        });
    }
}

/// Runs a handler that may block (a session's lock, a ring being mapped, a data plane ending) off the runtime.
async fn blocking<A: Send + 'static>(method: &str, handle: impl FnOnce() -> Result<A, Status> + Send + 'static) -> Result<A, Status> {
    tokio::task::spawn_blocking(handle).await.map_err(|e| Status::new(Code::Internal, format!("{method} failed: {e}")))?
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

/// A step as the session builds it; an on_error this worker does not know refuses it, naming the step.
fn step_spec(step: proto::StepSpec) -> Result<StepSpec, String> {
    let dead_letter = match proto::OnError::from_i32(step.on_error) {
        Some(proto::OnError::Fail) => false,
        Some(proto::OnError::DeadLetter) => true,
        None => return Err(format!("step '{}': on_error {} is neither ON_ERROR_FAIL nor ON_ERROR_DEAD_LETTER", step.name, step.on_error)),
    };
    Ok(StepSpec { name: step.name, step_type: step.r#type, config_json: step.config_json, dead_letter })
}

fn incomplete(key_group: KeyGroup) -> String {
    format!("the state of key group {} ends without its last piece", describe_key_group(key_group))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error_text::{tests::parts, MAX_BYTES};
    use crate::grpc::tests::grpc_message;
    use crate::cells::tests::CELL_COUNTER_TYPE;
    use crate::python::tests::{start_runtime, LONG_MESSAGE_START};

    /// A worker of this process that serves sessions with Python steps itself, as a session's own process does.
    fn python_hosting_worker() -> Arc<Worker> {
        start_runtime();
        Worker::new(std::env::temp_dir(), "secret".into(), false, None)
    }

    fn open_request(step_type: &str) -> proto::OpenSessionRequest {
        proto::OpenSessionRequest {
            protocol_version: proto::ProtocolVersion::Current as i32,
            transport: proto::TransportKind::Grpc as i32,
            token: "t".into(),
            steps: vec![proto::StepSpec { name: "failing".into(), r#type: step_type.into(), config_json: String::new(), ..Default::default() }],
            ..Default::default()
        }
    }

    /// The status as the bridge reads it is the worker's own text, cut (docs/protocol.md, "Error texts"): it starts
    /// with `start`, holds `kept` and the marker, and fits what the bridge takes.
    fn assert_cut(status: Status, start: &str, kept: &str) {
        let (text, encoded) = grpc_message(&Reply::status(status));
        assert!(encoded <= MAX_BYTES, "{encoded} bytes");
        assert!(text.starts_with(start) && text.contains(kept), "{text}");
        assert!(parts(&text).is_some(), "{text}");
    }

    #[test]
    fn a_step_that_cannot_be_built_with_a_huge_message_is_refused_with_its_text_cut() {
        let refused = python_hosting_worker().open_session(open_request("hosted_segments.FailsOnConstruction")).err().expect("refused");
        assert_eq!(refused.code, Code::InvalidArgument);
        assert_cut(refused, "session w", &format!("step 'failing': creating hosted_segments.FailsOnConstruction failed: RuntimeError: {LONG_MESSAGE_START}"));
    }

    #[tokio::test]
    async fn a_state_that_fails_to_restore_with_a_huge_message_is_refused_with_its_text_cut() {
        let worker = python_hosting_worker();
        let session_id = worker.open_session(open_request("hosted_segments.FailsOnRestore")).expect("opened").session_id;
        // The segment's encoding of one step's state (Chain): the step count, then each state's length and bytes.
        let one_steps_state = [1i32.to_be_bytes(), 1i32.to_be_bytes()].concat().into_iter().chain([7]).collect::<Vec<u8>>();
        let request = proto::RestoreStateRequest {
            session_id: session_id.clone(),
            states: vec![proto::KeyGroupState { key_group: Some(3), state: one_steps_state.into(), continued: false }],
        };
        let mut messages = Messages::new(Body::from(grpc::frame(&request)));
        let refused = worker.restore_state("flinkbridge.v1.BridgeControl/RestoreState", &mut messages).await.err().expect("refused");
        worker.close_session(proto::SessionRef { session_id: session_id.clone() }).unwrap();
        assert_eq!(refused.code, Code::InvalidArgument);
        assert_cut(refused, &format!("session {session_id} "), &format!("cannot restore its state: key group 3: RuntimeError: {LONG_MESSAGE_START}"));
    }

    #[test]
    fn a_steps_on_error_is_kept_and_one_this_worker_does_not_know_refuses_the_session() {
        let worker = Worker::new(std::env::temp_dir(), "secret".into(), false, None);
        let mut request = open_request("append_field");
        request.steps[0].on_error = proto::OnError::DeadLetter as i32;
        let session_id = worker.open_session(request.clone()).expect("opened").session_id;
        assert!(worker.registry.session(&session_id).unwrap().logic.lock().unwrap().has_dead_letter_step());
        worker.close_session(proto::SessionRef { session_id }).unwrap();

        request.steps[0].on_error = 7;
        let refused = worker.open_session(request).expect_err("refused");
        assert_eq!(refused.code, Code::InvalidArgument);
        assert!(refused.message.contains("step 'failing': on_error 7 is neither ON_ERROR_FAIL nor ON_ERROR_DEAD_LETTER"), "{}", refused.message);
    }

    /// A session of an echo then two CellCounters (cells.rs), 'b''s map with a TTL.
    fn cells_request(keyed: bool) -> proto::OpenSessionRequest {
        let step = |name: &str, config: &str| proto::StepSpec { name: name.into(), r#type: CELL_COUNTER_TYPE.into(), config_json: config.into(), ..Default::default() };
        let mut request = open_request(crate::steps::ECHO_TYPE);
        request.steps.extend([step("a", ""), step("b", r#"{"ttl_ms": 500}"#)]);
        request.keyed = keyed;
        request
    }

    #[test]
    fn a_keyed_session_lists_its_steps_cells_in_step_then_declaration_order() {
        let worker = Worker::new(std::env::temp_dir(), "secret".into(), false, None);
        let opened = worker.open_session(cells_request(true)).expect("opened");
        let cells: Vec<_> = opened.cells.iter().map(|c| (c.step.as_str(), c.name.as_str(), proto::CellKind::from_i32(c.kind).unwrap(), c.ttl_ms)).collect();
        use proto::CellKind::{Map, Value};
        assert_eq!(cells, [("a", "total", Value, 0), ("a", "seen", Map, 0), ("b", "total", Value, 0), ("b", "seen", Map, 500)]);
        assert_eq!(opened.protocol_version, 6);
        assert!(!opened.timers, "no step sets timers");
        assert!(worker.registry.session(&opened.session_id).unwrap().logic.lock().unwrap().keyed());
        worker.close_session(proto::SessionRef { session_id: opened.session_id }).unwrap();
        let plain = worker.open_session(open_request("append_field")).expect("opened");
        assert!(plain.cells.is_empty());
        worker.close_session(proto::SessionRef { session_id: plain.session_id }).unwrap();
    }

    #[tokio::test]
    async fn a_keyed_sessions_running_count_declares_its_counts_cell_and_refuses_whole_instance_counts() {
        let worker = Worker::new(std::env::temp_dir(), "secret".into(), false, None);
        let mut request = open_request("running_count");
        request.steps[0].name = "count".into();
        request.steps[0].config_json = r#"{"key_header": "user"}"#.into();
        let unkeyed = worker.open_session(request.clone()).expect("opened");
        assert!(unkeyed.cells.is_empty(), "a session that is not keyed keeps running_count's counts in the instance");
        worker.close_session(proto::SessionRef { session_id: unkeyed.session_id }).unwrap();

        request.keyed = true;
        let opened = worker.open_session(request).expect("opened");
        let cells: Vec<_> = opened.cells.iter().map(|c| (c.step.as_str(), c.name.as_str(), proto::CellKind::from_i32(c.kind).unwrap(), c.ttl_ms)).collect();
        assert_eq!(cells, [("count", "counts", proto::CellKind::Map, 0)]);

        // Whole-instance counts, as a checkpoint taken before protocol 5 holds them: one step, one key "a" counted 3.
        let mut step_state = vec![2u8];
        step_state.extend_from_slice(&1i32.to_be_bytes());
        crate::step::write_bytes(&mut step_state, b"a");
        step_state.extend_from_slice(&3i64.to_be_bytes());
        let mut segment_state = 1i32.to_be_bytes().to_vec();
        crate::step::write_bytes(&mut segment_state, &step_state);
        let request = proto::RestoreStateRequest {
            session_id: opened.session_id.clone(),
            states: vec![proto::KeyGroupState { key_group: Some(3), state: segment_state.into(), continued: false }],
        };
        let mut messages = Messages::new(Body::from(grpc::frame(&request)));
        let refused = worker.restore_state("flinkbridge.v1.BridgeControl/RestoreState", &mut messages).await.err().expect("refused");
        worker.close_session(proto::SessionRef { session_id: opened.session_id }).unwrap();
        assert_eq!(refused.code, Code::InvalidArgument);
        assert!(
            refused.message.ends_with("cannot restore its state: key group 3: step 'count' (running_count): the checkpoint holds its counts as whole-instance state (18 bytes): in a keyed session its counts live in cells (map cell 'counts') since protocol 5, so such a checkpoint, taken before, cannot be restored into it"),
            "{}",
            refused.message
        );
    }

    #[test]
    fn a_session_that_is_not_keyed_whose_steps_declare_cells_is_refused_naming_the_step_and_the_cell() {
        let worker = Worker::new(std::env::temp_dir(), "secret".into(), false, None);
        let refused = worker.open_session(cells_request(false)).expect_err("refused");
        assert_eq!(refused.code, Code::FailedPrecondition);
        assert!(refused.message.ends_with("step 'a' declares cell 'total', but the session's stream is not keyed: cells live under the record's key: key the segment with bridge.key"), "{}", refused.message);
        assert!(worker.registry.sessions.lock().unwrap().is_empty());
    }

    #[test]
    fn only_protocol_version_6_is_spoken() {
        let worker = Worker::new(std::env::temp_dir(), "secret".into(), false, None);
        let mut request = open_request("append_field");
        request.protocol_version = 5;
        let refused = worker.open_session(request).expect_err("refused");
        assert_eq!((refused.code, refused.message.as_str()), (Code::FailedPrecondition, "protocol version 5 is not supported; this worker speaks 6"));
    }

    /// A session of an echo then a window step, which keeps cells and sets timers.
    fn window_request(keyed: bool) -> proto::OpenSessionRequest {
        let mut request = open_request(crate::steps::ECHO_TYPE);
        let config = r#"{"key_header": "user", "size_ms": 10}"#;
        request.steps.push(proto::StepSpec { name: "w".into(), r#type: "window".into(), config_json: config.into(), ..Default::default() });
        request.keyed = keyed;
        request
    }

    #[test]
    fn a_keyed_session_whose_steps_set_timers_says_so_and_one_that_is_not_keyed_is_refused_naming_the_step() {
        let worker = Worker::new(std::env::temp_dir(), "secret".into(), false, None);
        let opened = worker.open_session(window_request(true)).expect("opened");
        assert!(opened.timers);
        assert_eq!(opened.cells.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["windows", "fired_until"]);
        worker.close_session(proto::SessionRef { session_id: opened.session_id }).unwrap();

        let mut request = window_request(false);
        request.steps[1].r#type = crate::steps::tests::TIMER_STEP_TYPE.into();
        request.steps[1].config_json = r#"{"cells": false}"#.into();
        let refused = worker.open_session(request).expect_err("refused");
        assert_eq!(refused.code, Code::FailedPrecondition);
        assert!(refused.message.ends_with("step 'w' sets timers, but the session's stream is not keyed: a timer belongs to a key: key the segment with bridge.key"), "{}", refused.message);
        assert!(worker.registry.sessions.lock().unwrap().is_empty());
    }

    #[test]
    fn a_hosted_python_step_that_sets_timers_opens_a_keyed_session_that_says_so_and_refuses_one_that_is_not_keyed() {
        let worker = python_hosting_worker();
        let mut request = open_request(crate::python::tests::TIMER_STEP);
        request.steps[0].config_json = r#"{"cells": false}"#.into();
        request.keyed = true;
        let opened = worker.open_session(request.clone()).expect("opened");
        assert!(opened.timers);
        worker.close_session(proto::SessionRef { session_id: opened.session_id }).unwrap();
        request.keyed = false;
        let refused = worker.open_session(request).expect_err("refused");
        assert_eq!(refused.code, Code::FailedPrecondition);
        assert!(refused.message.ends_with("step 'failing' sets timers, but the session's stream is not keyed: a timer belongs to a key: key the segment with bridge.key"), "{}", refused.message);
    }

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
