//! Sessions with Python steps run in a worker process of their own, so that no two sessions share a GIL (as in
//! the Python worker): this worker starts its own binary again in one-session mode (`--one-session`, on a Unix
//! socket in the ring directory, its parent's pid to watch) and hands it every call of that session as the call
//! came, headers and streams included; its answers come back unchanged. The child serves its session's ring or
//! stream itself and exits once the session ends.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
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
}

impl Child {
    /// Starts a one-session worker with `args` and connects to it.
    pub async fn start(args: Vec<String>) -> Result<Child, Status> {
        let failed = |what: String| Status::new(Code::Internal, format!("a session process could not start: {what}"));
        let exe = std::env::current_exe().map_err(|e| failed(e.to_string()))?;
        let mut process = Command::new(exe).args(&args).stdin(Stdio::null()).stdout(Stdio::piped()).spawn().map_err(|e| failed(e.to_string()))?;
        let pid = process.id();
        let stdout = process.stdout.take().expect("piped");
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            std::io::BufReader::new(stdout).read_line(&mut line).map(|_| line)
        });
        let listening = format!("{LISTENING_PREFIX}unix:");
        let socket = match tokio::time::timeout(START_TIMEOUT, line).await {
            Ok(Ok(Ok(line))) if line.starts_with(&listening) => PathBuf::from(line[listening.len()..].trim()),
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
        Ok(Child { process: Mutex::new(process), pid, sender: tokio::sync::Mutex::new(sender), ring: None })
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

/// Kills a session process that could not be used, and reaps it.
fn abandon(process: &mut std::process::Child) {
    let _ = process.kill();
    let _ = process.wait();
}
