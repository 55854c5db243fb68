//! Flink Bridge's Rust worker: `flink-bridge-worker [--port N | --unix-socket | --unix-socket-path PATH] [--host H] [--ring-dir DIR]
//! [--python-runtime DIR [--path DIR]... [--refuse-pickled-state]] [--parent-pid PID]`. Serves the control service and the streamed data plane over HTTP/2 (gRPC framing of its
//! own, over hyper), maps the shm rings sessions name, prints the listening line the launch contract asks for
//! (docs/protocol.md, "Launch and lifetime"), and serves each session on a thread of this process.

mod catalog;
mod cells;
mod child;
mod control;
mod error_text;
#[cfg(test)]
mod golden_vectors;
mod grpc;
#[cfg(test)]
mod harness;
mod layout;
mod python;
mod record;
mod registry;
mod ring;
mod ring_folder;
mod secret;
mod session;
mod shared_map;
mod shm_loop;
mod step;
mod steps;
mod stream;
mod timers;
#[cfg(test)]
mod window_tests;
#[cfg(test)]
mod batch_tests;
#[cfg(test)]
mod count_tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UnixListener};

use child::LISTENING_PREFIX;
use control::Worker;

pub mod proto {
    pub mod flinkbridge {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/flinkbridge.v1.rs"));
        }
    }
    pub mod flink_worker {
        include!(concat!(env!("OUT_DIR"), "/flink_worker.rs"));
    }
    pub use flinkbridge::v1::*;
}

/// Logs one line to standard error (the spawner copies it into the TaskManager's log). A spawner that is gone
/// may have closed the pipe: the line is then lost, and the worker goes on (eprintln! would panic).
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "flink-bridge-worker[{}]: {}", std::process::id(), format!($($arg)*));
    }};
}

const PARENT_CHECK: Duration = Duration::from_millis(200);
/// Exit code of a worker whose spawner is gone.
const ORPHANED: i32 = 3;
const USAGE: &str = "usage: flink-bridge-worker [--port N | --unix-socket | --unix-socket-path PATH] [--host H] [--ring-dir DIR] [--python-runtime DIR [--path DIR]... [--refuse-pickled-state]] [--parent-pid PID]";

struct Options {
    port: u16,
    unix_socket: bool,
    /// A fixed socket to listen on (a sidecar's address, in a folder it shares with its TaskManager).
    socket_path: Option<PathBuf>,
    host: String,
    ring_dir: PathBuf,
    parent_pid: Option<i32>,
    /// The Python worker's runtime folder (workers/python/): with it, the worker hosts Python segments.
    python_runtime: Option<PathBuf>,
    /// Where Python segments' modules are found.
    paths: Vec<PathBuf>,
    /// Serve one session (for a parent worker that starts this process for a session with Python steps), then exit.
    one_session: bool,
}

fn default_ring_directory() -> PathBuf {
    let user = std::env::var("USER").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| {
        let pw = unsafe { libc::getpwuid(libc::geteuid()) };
        if pw.is_null() { "unknown".into() } else { unsafe { std::ffi::CStr::from_ptr((*pw).pw_name) }.to_string_lossy().into_owned() }
    });
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() && unsafe { libc::access(c"/dev/shm".as_ptr(), libc::W_OK) } == 0 { shm } else { Path::new("/tmp") };
    base.join(format!("flink-bridge-{user}"))
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options { port: 50051, unix_socket: false, socket_path: None, host: "127.0.0.1".into(), ring_dir: default_ring_directory(), parent_pid: None, python_runtime: None, paths: Vec::new(), one_session: false };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().cloned().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--port" => options.port = value("--port")?.parse().map_err(|_| "--port needs a port number".to_string())?,
            "--unix-socket" => options.unix_socket = true,
            "--unix-socket-path" => options.socket_path = Some(ring::absolute(Path::new(&value("--unix-socket-path")?))),
            "--one-session" => options.one_session = true,
            "--host" => options.host = value("--host")?,
            "--ring-dir" => options.ring_dir = PathBuf::from(value("--ring-dir")?),
            "--python-runtime" => options.python_runtime = Some(ring::absolute(Path::new(&value("--python-runtime")?))),
            "--path" => options.paths.push(ring::absolute(Path::new(&value("--path")?))),
            // The Python runtime reads it from the environment, here and in the session processes started for it.
            "--refuse-pickled-state" => std::env::set_var(python::PICKLED_STATE_ENV, "refuse"),
            "--parent-pid" => options.parent_pid = Some(value("--parent-pid")?.parse().map_err(|_| "--parent-pid needs a process id".to_string())?),
            "--compat-segments" => {
                if value("--compat-segments")?.trim() != "{}" {
                    return Err("the Rust worker does not serve the prototype's FlinkWorkerService (grpc_mode compat); use grpc_mode stream or shm".into());
                }
            }
            "--help" | "-h" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(options)
}

/// The arguments of a process this worker starts for one session with Python steps: on a Unix socket in the
/// same ring directory, hosting Python the same way, watching this process as its spawner.
fn child_args(options: &Options) -> Vec<String> {
    let mut args = vec!["--unix-socket".to_string(), "--one-session".to_string(), "--ring-dir".to_string()];
    args.push(options.ring_dir.to_string_lossy().into_owned());
    if let Some(runtime) = &options.python_runtime {
        args.extend(["--python-runtime".to_string(), runtime.to_string_lossy().into_owned()]);
    }
    for path in &options.paths {
        args.extend(["--path".to_string(), path.to_string_lossy().into_owned()]);
    }
    args.extend(["--parent-pid".to_string(), std::process::id().to_string()]);
    args
}

fn parent_gone(parent_pid: Option<i32>) -> bool {
    parent_pid.is_some_and(|pid| unsafe { libc::getppid() } != pid)
}

/// The socket this worker listens on in its ring directory (private, 0700), named by its pid. Sockets of
/// workers that are gone (killed, so they could not remove theirs) are removed first: nothing accepts on them.
fn unix_socket(ring_dir: &Path) -> PathBuf {
    if let Ok(entries) = std::fs::read_dir(ring_dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("worker-") && name.ends_with(".sock") && std::os::unix::net::UnixStream::connect(entry.path()).is_err() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    let path = ring::absolute(ring_dir).join(format!("worker-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// `path`, a fixed socket this worker is told to listen on, made free: a socket file there that nothing accepts on
/// (its worker was killed) is removed; one that accepts is an error, as two workers must not share an address.
fn claim_socket(path: &Path) -> Result<PathBuf, String> {
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(format!("cannot listen on unix:{}: another process accepts on it", path.display()));
    }
    let _ = std::fs::remove_file(path);
    Ok(path.to_path_buf())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = parse(&args).unwrap_or_else(|e| {
        eprintln!("flink-bridge-worker: {e}");
        std::process::exit(2)
    });
    // Checked before a port is opened: a spawner that died while this process started is seen at once.
    if parent_gone(options.parent_pid) {
        log!("the spawner (pid {}) is gone before the worker started; exiting", options.parent_pid.unwrap());
        std::process::exit(ORPHANED);
    }
    // The ring folder is checked before the secret or the socket is written there, and before any ring in it is opened.
    let secret = ring_folder::ensure_private(&options.ring_dir).and_then(|_| secret::for_directory(&options.ring_dir)).unwrap_or_else(|e| {
        eprintln!("flink-bridge-worker: {e}");
        std::process::exit(1)
    });
    // Only a session's own process runs Python: the worker serving every session hands each session with Python
    // steps to a process of its own (child.rs), so it needs to know only that a runtime was given.
    let session_processes = options.python_runtime.is_some() && !options.one_session;
    if let (Some(runtime), true) = (&options.python_runtime, options.one_session) {
        if let Err(e) = python::start(runtime.clone(), &options.paths) {
            eprintln!("flink-bridge-worker: {e}");
            std::process::exit(1)
        }
    }
    let worker = Worker::new(options.ring_dir.clone(), secret, options.one_session, session_processes.then(|| child_args(&options)));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("grpc")
        // Streamed sessions and control calls reach Python steps from these threads.
        .on_thread_start(python::attach_this_thread)
        .on_thread_stop(python::detach_this_thread)
        .build()
        .expect("starting the async runtime");
    runtime.block_on(serve(worker, options));
}

async fn serve(worker: Arc<Worker>, options: Options) {
    let socket = match &options.socket_path {
        Some(path) => Some(claim_socket(path).unwrap_or_else(|e| {
            log!("{e}");
            std::process::exit(2)
        })),
        None => options.unix_socket.then(|| unix_socket(&options.ring_dir)),
    };
    let listener = match &socket {
        Some(path) => UnixListener::bind(path).map(Listener::Unix).map_err(|e| format!("cannot listen on unix:{}: {e}", path.display())),
        None => TcpListener::bind((options.host.as_str(), options.port)).await.map(Listener::Tcp).map_err(|e| format!("cannot listen on {}:{}: {e}", options.host, options.port)),
    };
    let listener = listener.unwrap_or_else(|e| {
        log!("{e}");
        std::process::exit(1)
    });
    let address = match (&listener, &socket) {
        (Listener::Unix(_), Some(path)) => format!("unix:{}", path.display()),
        (Listener::Tcp(tcp), _) => format!("{}:{}", options.host, tcp.local_addr().map(|a| a.port()).unwrap_or(options.port)),
        _ => unreachable!("a unix listener has its path"),
    };
    watch_signals_and_parent(Arc::clone(&worker), socket.clone(), options.parent_pid);
    {
        use std::io::Write;
        let mut stdout = std::io::stdout();
        if writeln!(stdout, "{LISTENING_PREFIX}{address}").and_then(|_| stdout.flush()).is_err() {
            std::process::exit(1);
        }
    }
    log!("worker {} serving on {address}, ring directory {}", worker.id, options.ring_dir.display());
    loop {
        let accepted = match &listener {
            Listener::Tcp(tcp) => tcp.accept().await.map(|(io, _)| {
                let _ = io.set_nodelay(true);
                spawn_connection(Arc::clone(&worker), io)
            }),
            Listener::Unix(unix) => unix.accept().await.map(|(io, _)| spawn_connection(Arc::clone(&worker), io)),
        };
        if let Err(e) = accepted {
            log!("accepting a connection failed: {e}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

fn spawn_connection<IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static>(worker: Arc<Worker>, io: IO) {
    let service = hyper::service::service_fn(move |request| {
        let worker = Arc::clone(&worker);
        async move { Ok::<_, std::convert::Infallible>(worker.call(request).await) }
    });
    tokio::spawn(async move {
        let connection = hyper::server::conn::Http::new()
            .http2_only(true)
            .http2_initial_stream_window_size(4 << 20)
            .http2_initial_connection_window_size(8 << 20)
            .http2_max_frame_size(1 << 20)
            .serve_connection(io, service);
        if let Err(e) = connection.await {
            log!("a connection ended with an error: {e}");
        }
    });
}

/// SIGTERM: stop as asked (sessions end as stopped); SIGINT: close every session; the spawner gone: the same,
/// with exit code 3. Each ends the process.
fn watch_signals_and_parent(worker: Arc<Worker>, socket: Option<PathBuf>, parent_pid: Option<i32>) {
    let exit = move |worker: &Worker, asked: bool, code: i32| {
        if asked { worker.stop_as_asked() } else { worker.close_all() }
        if let Some(path) = &socket {
            let _ = std::fs::remove_file(path);
        }
        std::process::exit(code)
    };
    let (term_worker, term_exit) = (Arc::clone(&worker), exit.clone());
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (mut term, mut int) = (signal(SignalKind::terminate()).expect("SIGTERM handler"), signal(SignalKind::interrupt()).expect("SIGINT handler"));
        let asked = tokio::select! { _ = term.recv() => true, _ = int.recv() => false };
        log!("stopping: {}", if asked { "SIGTERM" } else { "SIGINT" });
        tokio::task::spawn_blocking(move || term_exit(&term_worker, asked, 0));
    });
    if parent_pid.is_some() {
        std::thread::Builder::new()
            .name("parent-check".into())
            .spawn(move || loop {
                std::thread::sleep(PARENT_CHECK);
                if parent_gone(parent_pid) {
                    log!("stopping: the spawner (pid {}) is gone", parent_pid.unwrap());
                    exit(&worker, false, ORPHANED);
                }
            })
            .expect("starting the parent check");
    }
}
