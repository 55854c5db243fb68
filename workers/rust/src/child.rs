//! Sessions with Python steps run in a worker process of their own, so that no two sessions share a GIL (as in
//! the Python worker): this worker starts its own binary again in one-session mode (`--one-session`, on a Unix
//! socket in the ring directory, its parent's pid to watch) and hands it every call of that session as the call
//! came, headers and streams included; its answers come back unchanged. The child serves its session's ring or
//! stream itself and exits once the session ends. Everything the child writes after its listening line, on
//! standard output or error (a Python step's `print` among it), goes into this worker's log line by line, named by
//! the session (docs/protocol.md, "Launch and lifetime").

use std::io::{BufRead, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{HeaderMap, Request, Response};
use hyper::client::conn::SendRequest;
use hyper::Body;

use crate::grpc::{Code, Status};

/// Begins the line a worker prints once it listens, its address following (docs/protocol.md, "Launch and
/// lifetime"): this worker prints it, and waits for it from each session process it starts.
pub const LISTENING_PREFIX: &str = "flink-bridge worker listening on ";
/// How long a child may take to start and print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Child {
    process: Mutex<std::process::Child>,
    pub pid: u32,
    /// One call at a time takes its turn to start on the connection; the calls then run side by side.
    sender: tokio::sync::Mutex<SendRequest<Body>>,
    /// The ring of its session (shm), closed here if the child dies without closing it.
    pub ring: Option<PathBuf>,
    /// How this worker's log names the lines the child writes: its process until its session is open, then the session.
    output_name: Arc<Mutex<String>>,
}

impl Child {
    /// Starts a one-session worker with `args` and connects to it.
    pub async fn start(args: Vec<String>) -> Result<Child, Status> {
        let failed = |what: String| Status::new(Code::Internal, format!("a session process could not start: {what}"));
        let exe = std::env::current_exe().map_err(|e| failed(e.to_string()))?;
        let mut process = Command::new(exe).args(&args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(|e| failed(e.to_string()))?;
        let pid = process.id();
        let output_name = Arc::new(Mutex::new(format!("session process {pid}")));
        let (first_line, line) = tokio::sync::oneshot::channel();
        relay_output(pid, process.stdout.take().expect("piped"), Arc::clone(&output_name), Some(first_line));
        relay_output(pid, process.stderr.take().expect("piped"), Arc::clone(&output_name), None);
        let listening = format!("{LISTENING_PREFIX}unix:");
        let socket = match tokio::time::timeout(START_TIMEOUT, line).await {
            Ok(Ok(line)) if line.starts_with(&listening) => PathBuf::from(line[listening.len()..].trim()),
            other => {
                abandon(&mut process);
                return Err(failed(format!("process {pid} printed no listening line within {START_TIMEOUT:?} ({other:?})")));
            }
        };
        let connected = async {
            let stream = tokio::net::UnixStream::connect(&socket).await.map_err(|e| e.to_string())?;
            hyper::client::conn::Builder::new().http2_only(true).handshake::<_, Body>(stream).await.map_err(|e| e.to_string())
        };
        let (sender, connection) = match connected.await {
            Ok(pair) => pair,
            Err(e) => {
                abandon(&mut process);
                return Err(failed(format!("cannot connect to process {pid}: {e}")));
            }
        };
        // The connection ends with the child, whose exit its reaper reports.
        tokio::spawn(connection);
        Ok(Child { process: Mutex::new(process), pid, sender: tokio::sync::Mutex::new(sender), ring: None, output_name })
    }

    /// From now on the log names what the child writes by `session_id`, the session it serves.
    pub fn serves(&self, session_id: &str) {
        *self.output_name.lock().unwrap() = format!("session {session_id}");
    }

    /// Hands a call to the child as it came (`method`, the caller's headers, the rest of its body).
    pub async fn forward(&self, method: &str, headers: &HeaderMap, body: Body) -> Response<Body> {
        let mut request = Request::post(format!("http://localhost/{method}")).body(body).expect("a valid request");
        *request.headers_mut() = headers.clone();
        let answered = async {
            let call = {
                let mut sender = self.sender.lock().await;
                futures_util::future::poll_fn(|cx| sender.poll_ready(cx)).await?;
                sender.send_request(request)
            };
            call.await
        };
        answered.await.unwrap_or_else(|e| {
            let status = Status::new(Code::Unavailable, format!("the session's process {} is gone: {e}", self.pid));
            crate::grpc::Reply::status_response(status)
        })
    }

    /// Sends `signal` to the child and waits up to `limit` for it to end; kills it after that.
    pub fn end(&self, signal: libc::c_int, limit: Duration) {
        unsafe { libc::kill(self.pid as libc::pid_t, signal) };
        let deadline = Instant::now() + limit;
        let mut process = self.process.lock().unwrap();
        while Instant::now() < deadline {
            if matches!(process.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = process.kill();
        let _ = process.wait();
    }

    /// Waits for the child to exit by itself; its exit status.
    pub fn wait(&self) -> Option<std::process::ExitStatus> {
        loop {
            if let Ok(Some(status)) = self.process.lock().unwrap().try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Reads what a session process writes on `output` until it closes it (it ends), each line into this worker's log
/// named by `name`: a step's `print` must neither block on a full pipe nor fail on a closed one. The first line
/// goes to `first_line` instead when one is given (standard output's first, the listening line).
fn relay_output(pid: u32, output: impl Read + Send + 'static, name: Arc<Mutex<String>>, mut first_line: Option<tokio::sync::oneshot::Sender<String>>) {
    std::thread::Builder::new()
        .name(format!("output-{pid}"))
        .spawn(move || {
            let mut output = std::io::BufReader::new(output);
            let mut line = Vec::new();
            while matches!(output.read_until(b'\n', &mut line), Ok(read) if read > 0) {
                let text = String::from_utf8_lossy(&line);
                match first_line.take() {
                    Some(first) => drop(first.send(text.into_owned())),
                    None => crate::log!("{}: {}", name.lock().unwrap(), text.trim_end_matches(['\n', '\r'])),
                }
                line.clear();
            }
        })
        .expect("starting a thread for a session process's output");
}

/// Kills a session process that could not be used, and reaps it.
fn abandon(process: &mut std::process::Child) {
    let _ = process.kill();
    let _ = process.wait();
}
