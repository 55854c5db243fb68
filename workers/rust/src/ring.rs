//! The worker's side of a session's ring file (docs/protocol.md, "The ring file a session names"): checked,
//! mapped, beaten every 100 ms, read through one consumer and written through one producer.
//!
//! Every word the peer reads while this side writes it (positions, futex words, waiting counts, heartbeat,
//! closed flag) is an atomic; positions are published with release and read with acquire ordering, and a
//! SeqCst fence sits between publishing a position and reading the peer's waiting count (and between counting
//! oneself waiting and checking again), so no wake-up is lost. The positions are the peer's to write: each is
//! checked before it indexes the ring, and every frame length against the bytes published. Whatever this side
//! reads of the file (header fields, frame headers and bodies) it loads once, atomically, and then checks: the
//! compiler may assume a `&[u8]` stays as it was, which a peer writing the file breaks.

use std::fs::OpenOptions;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{fence, AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use memmap2::MmapMut;

use crate::layout as l;
use crate::shared_map::SharedMap;

pub const SUFFIX: &str = ".ring";
const HEARTBEAT: Duration = Duration::from_millis(100);
/// Spins before a wait sleeps on its futex: a busy peer answers within microseconds.
const SPINS: u32 = 200;

/// A ring that cannot be used, or a peer that broke the layout's rules: ends the session.
#[derive(Debug)]
pub struct RingError(pub String);

impl std::fmt::Display for RingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub fn now_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// `path` made absolute and rid of `.` and `..` without following links (a link is refused later).
pub fn absolute(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() { path.to_path_buf() } else { std::env::current_dir().unwrap_or_default().join(path) };
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The path to open if `ring_path` is a `.ring` file directly in `directory`, a regular file (no link) of this
/// user with mode 0600; otherwise an error naming the rule broken and nothing of the file.
pub fn check_ring_path(directory: &Path, ring_path: &str) -> Result<PathBuf, RingError> {
    let directory = absolute(directory);
    let ring = absolute(Path::new(ring_path));
    if ring.parent() != Some(directory.as_path()) || !ring_path.ends_with(SUFFIX) {
        return Err(RingError(format!(
            "ring path {ring_path} is not a {SUFFIX} file in this worker's ring directory {} (start the worker with \
             --ring-dir, or set flink-bridge.shm.directory, so that the two agree)",
            directory.display()
        )));
    }
    let info = std::fs::symlink_metadata(&ring)
        .map_err(|e| RingError(format!("ring path {} cannot be checked: {:?}", ring.display(), e.kind())))?;
    if !info.file_type().is_file() {
        return Err(RingError(format!("ring path {} is not a regular file", ring.display())));
    }
    let uid = unsafe { libc::geteuid() };
    if info.uid() != uid {
        return Err(RingError(format!("ring file {} belongs to uid {}, not to this user", ring.display(), info.uid())));
    }
    if info.mode() & 0o7777 != 0o600 {
        return Err(RingError(format!(
            "ring file {} has mode {:o}; a ring file is rw------- (0600)",
            ring.display(),
            info.mode() & 0o7777
        )));
    }
    Ok(ring)
}

fn check_capacity(ring: &str, capacity: u32) -> Result<(), RingError> {
    if capacity < l::MIN_CAPACITY || !capacity.is_power_of_two() {
        return Err(RingError(format!(
            "the {ring} ring capacity {capacity} must be a power of two of at least {}",
            l::MIN_CAPACITY
        )));
    }
    Ok(())
}

fn token_bytes(token: &str) -> Result<[u8; l::TOKEN_LENGTH], RingError> {
    if token.is_empty() || token.len() > l::TOKEN_LENGTH || !token.is_ascii() {
        return Err(RingError(format!("a session token must be 1 to {} ASCII characters", l::TOKEN_LENGTH)));
    }
    let mut padded = [0u8; l::TOKEN_LENGTH];
    padded[..token.len()].copy_from_slice(token.as_bytes());
    Ok(padded)
}

/// Compares in time independent of where the two differ.
pub fn constant_time_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A ring file mapped by the worker after its header and token were checked.
pub struct RingFile {
    pub path: PathBuf,
    /// Read and written through `base`; says whether the file was cut short under it.
    map: SharedMap,
    base: *mut u8,
    pub to_worker_capacity: usize,
    pub from_worker_capacity: usize,
    closed: AtomicBool,
}

// The mapping is shared memory read only through atomic loads and written through atomics and the one producer's
// frames: safe to reach from the serving thread and the heartbeat thread.
unsafe impl Send for RingFile {}
unsafe impl Sync for RingFile {}

impl RingFile {
    pub fn open(path: PathBuf, token: &str) -> Result<Arc<RingFile>, RingError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| RingError(format!("{}: cannot be opened: {:?}", path.display(), e.kind())))?;
        let size = file.metadata().map_err(|e| RingError(format!("{}: {:?}", path.display(), e.kind())))?.len() as usize;
        if size < l::HEADER_SIZE {
            return Err(RingError(format!("{}: not a ring file: shorter than a ring file's header", path.display())));
        }
        let map = unsafe { MmapMut::map_mut(&file) }
            .map_err(|e| RingError(format!("{}: cannot be mapped: {:?}", path.display(), e.kind())))?;
        let mut map = SharedMap::new(map).map_err(|e| RingError(format!("{}: cannot be mapped: {e}", path.display())))?;
        let base = map.as_mut_ptr();
        let mut ring = RingFile { path, map, base, to_worker_capacity: 0, from_worker_capacity: 0, closed: AtomicBool::new(false) };
        ring.check_header(size, token)?;
        ring.word32(l::WORKER_PID_OFFSET).store(std::process::id(), Ordering::Relaxed);
        let ring = Arc::new(ring);
        ring.heartbeat();
        Ok(ring)
    }

    fn check_header(&mut self, size: usize, token: &str) -> Result<(), RingError> {
        let path = self.path.display().to_string();
        let magic = self.word64(l::MAGIC_OFFSET).load(Ordering::Acquire);
        let word = |offset| self.word32(offset).load(Ordering::Relaxed);
        let (version, header_size) = (word(l::VERSION_OFFSET), word(l::HEADER_SIZE_OFFSET));
        let (to_worker, from_worker) = (word(l::TO_WORKER_CAPACITY_OFFSET), word(l::FROM_WORKER_CAPACITY_OFFSET));
        let mut found = [0u8; l::TOKEN_LENGTH];
        for (i, chunk) in found.chunks_exact_mut(8).enumerate() {
            chunk.copy_from_slice(&self.word64(l::TOKEN_OFFSET + 8 * i).load(Ordering::Relaxed).to_ne_bytes());
        }
        self.check_whole()?;
        if magic != l::MAGIC {
            // Says nothing of what the file holds instead: no error echoes a file's contents.
            return Err(RingError(format!("{path}: not a ring file (it does not start with the ring magic)")));
        }
        for (field, found, expected) in [("version", version, l::VERSION), ("header size", header_size, l::HEADER_SIZE as u32)] {
            if found != expected {
                return Err(RingError(format!(
                    "{path}: not a ring file this side understands: {field} is {found}, expected {expected}"
                )));
            }
        }
        check_capacity("to-worker", to_worker)?;
        check_capacity("from-worker", from_worker)?;
        let expected = l::file_size(to_worker as usize, from_worker as usize);
        if size != expected {
            return Err(RingError(format!(
                "{path}: not a ring file this side understands: file size is {size}, expected {expected}"
            )));
        }
        if !constant_time_equal(&found, &token_bytes(token)?) {
            return Err(RingError(format!("{path}: the session token does not match; refusing the ring")));
        }
        self.to_worker_capacity = to_worker as usize;
        self.from_worker_capacity = from_worker as usize;
        Ok(())
    }

    /// An error once the file was found cut short under its mapping (shared_map): what was read since is zeros,
    /// not the peer's, and must not be used.
    fn check_whole(&self) -> Result<(), RingError> {
        if self.map.cut_short() {
            return Err(RingError(format!(
                "{}: the ring file was cut short while mapped (another process truncated it), so the session ends",
                self.path.display()
            )));
        }
        Ok(())
    }

    fn word32(&self, offset: usize) -> &AtomicU32 {
        unsafe { &*(self.base.add(offset) as *const AtomicU32) }
    }

    fn word64(&self, offset: usize) -> &AtomicU64 {
        unsafe { &*(self.base.add(offset) as *const AtomicU64) }
    }

    /// Starts the thread that writes the worker's heartbeat every 100 ms until the ring is closed.
    pub fn start_heartbeat(self: &Arc<Self>) -> JoinHandle<()> {
        let ring = Arc::clone(self);
        std::thread::Builder::new()
            .name("ring-heartbeat".into())
            .spawn(move || {
                while !ring.closed.load(Ordering::Acquire) {
                    ring.heartbeat();
                    std::thread::sleep(HEARTBEAT);
                }
            })
            .expect("starting a ring's heartbeat thread")
    }

    fn heartbeat(&self) {
        if !self.closed.load(Ordering::Acquire) {
            self.word64(l::WORKER_HEARTBEAT_OFFSET).store(now_millis() as u64, Ordering::Release);
        }
    }

    fn bridge_closed(&self) -> bool {
        self.word32(l::CLOSED_OFFSET).load(Ordering::Acquire) != 0
    }

    /// Why the bridge counts as lost (it closed the ring, or its heartbeat is silent past the limit), or None.
    /// Process ids are never looked at: the bridge may live in another PID namespace.
    pub fn bridge_lost(&self, limit_millis: i64) -> Option<String> {
        if let Err(cut) = self.check_whole() {
            return Some(cut.0);
        }
        if self.bridge_closed() {
            return Some("the bridge closed the ring".into());
        }
        let silence = now_millis() - self.word64(l::BRIDGE_HEARTBEAT_OFFSET).load(Ordering::Acquire) as i64;
        (silence > limit_millis)
            .then(|| format!("no heartbeat from the bridge for {silence} ms (the limit is {limit_millis} ms)"))
    }

    /// Whether the bridge crashed holding the ring: lost without closing it, so it will not remove its file. Not so
    /// of a file cut short, whose bridge may be there still.
    pub fn bridge_crashed(&self, limit_millis: i64) -> bool {
        !self.map.cut_short() && !self.bridge_closed() && self.bridge_lost(limit_millis).is_some()
    }

    /// Tells the bridge this side left (the closed flag, and a wake of every sleeper). `stopped`: the worker was
    /// asked to stop and answered every input it read (CLOSED_STOPPED), a planned stop.
    pub fn close(&self, stopped: bool) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let flag = if stopped { l::CLOSED_STOPPED } else { l::CLOSED_LEFT };
        self.word32(l::CLOSED_OFFSET).store(flag, Ordering::Release);
        fence(Ordering::SeqCst);
        for control in [l::TO_WORKER_CONTROL_OFFSET, l::FROM_WORKER_CONTROL_OFFSET] {
            for (word, waiting) in [(l::DATA_FUTEX, l::CONSUMER_WAITING), (l::SPACE_FUTEX, l::PRODUCER_WAITING)] {
                Wake::new(self, control + word, control + waiting).if_waiting();
            }
        }
    }

    pub fn consumer(self: &Arc<Self>) -> Consumer {
        Consumer::new(RingEnd::new(self, l::TO_WORKER_CONTROL_OFFSET, l::HEADER_SIZE, self.to_worker_capacity, "to-worker"))
    }

    pub fn producer(self: &Arc<Self>) -> Producer {
        let data = l::HEADER_SIZE + self.to_worker_capacity;
        Producer::new(RingEnd::new(self, l::FROM_WORKER_CONTROL_OFFSET, data, self.from_worker_capacity, "from-worker"))
    }
}

/// For a session whose serving process died holding the ring at `path`: sets the closed flag (unless that
/// process set it, which says more) and wakes every sleeper, so the bridge ends the session now rather than when
/// the dead side's heartbeat times out.
pub fn mark_closed(path: &Path) {
    let Ok(file) = OpenOptions::new().read(true).write(true).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC).open(path) else { return };
    if file.metadata().map(|m| (m.len() as usize) < l::HEADER_SIZE).unwrap_or(true) {
        return;
    }
    let Ok(header) = (unsafe { memmap2::MmapOptions::new().len(l::HEADER_SIZE).map_mut(&file) }) else { return };
    // Guarded too: the file may be cut short after its size was read.
    let Ok(mut header) = SharedMap::new(header) else { return };
    let base = header.as_mut_ptr();
    let word = |offset: usize| unsafe { &*(base.add(offset) as *const AtomicU32) };
    let _ = word(l::CLOSED_OFFSET).compare_exchange(0, l::CLOSED_LEFT, Ordering::AcqRel, Ordering::Acquire);
    fence(Ordering::SeqCst);
    for control in [l::TO_WORKER_CONTROL_OFFSET, l::FROM_WORKER_CONTROL_OFFSET] {
        for futex in [l::DATA_FUTEX, l::SPACE_FUTEX] {
            word(control + futex).fetch_add(1, Ordering::Release);
            futex_wake_all(word(control + futex));
        }
    }
}

fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let spec = libc::timespec { tv_sec: timeout.as_secs() as libc::time_t, tv_nsec: timeout.subsec_nanos() as libc::c_long };
    // EAGAIN (the word changed), EINTR and ETIMEDOUT all mean "go and look again" to the callers. Shared (not
    // private) futexes: the peer is another process.
    unsafe {
        libc::syscall(libc::SYS_futex, word as *const AtomicU32, libc::FUTEX_WAIT, expected, &spec as *const libc::timespec,
                      std::ptr::null::<u32>(), 0);
    }
}

fn futex_wake_all(word: &AtomicU32) {
    unsafe {
        libc::syscall(libc::SYS_futex, word as *const AtomicU32, libc::FUTEX_WAKE, i32::MAX, std::ptr::null::<libc::timespec>(),
                      std::ptr::null::<u32>(), 0);
    }
}

/// The peer's side of a wait on one futex word: bumps the word and wakes, only if the peer counts a sleeper.
/// The caller has fenced since it published what the sleeper waits for.
struct Wake {
    word: *const AtomicU32,
    waiting: *const AtomicI32,
}

impl Wake {
    fn new(ring: &RingFile, futex_offset: usize, waiting_offset: usize) -> Wake {
        Wake { word: ring.word32(futex_offset), waiting: ring.word32(waiting_offset) as *const AtomicU32 as *const AtomicI32 }
    }

    fn if_waiting(&self) {
        let (word, waiting) = unsafe { (&*self.word, &*self.waiting) };
        if waiting.load(Ordering::Acquire) != 0 {
            word.fetch_add(1, Ordering::Release);
            futex_wake_all(word);
        }
    }
}

/// This side's waits on one futex word: spins briefly, then counts itself waiting and sleeps until `ready()`
/// or about `timeout`. The count is fenced before `ready` is checked again, and the peer fences between
/// publishing and reading the count, so no wake-up is lost.
struct Wait {
    word: *const AtomicU32,
    waiting: *const AtomicI32,
}

impl Wait {
    fn until(&self, ready: impl Fn() -> bool, timeout: Duration) {
        for _ in 0..SPINS {
            if ready() {
                return;
            }
            std::hint::spin_loop();
        }
        let (word, waiting) = unsafe { (&*self.word, &*self.waiting) };
        let ticket = word.load(Ordering::Acquire);
        waiting.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if !ready() {
            futex_wait(word, ticket, timeout);
        }
        waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What either end of one ring holds: the mapped file (kept alive), where the ring's data lies, its control
/// block's two positions.
struct RingEnd {
    ring: Arc<RingFile>,
    control: usize,
    data: *mut u8,
    capacity: usize,
    max_frame: usize,
    name: String,
}

impl RingEnd {
    fn new(ring: &Arc<RingFile>, control: usize, data: usize, capacity: usize, which: &str) -> RingEnd {
        RingEnd {
            ring: Arc::clone(ring),
            control,
            data: unsafe { ring.base.add(data) },
            capacity,
            max_frame: l::max_frame_length(capacity),
            name: format!("{} ({which} ring)", ring.path.display()),
        }
    }

    fn producer_position(&self) -> &AtomicU64 {
        self.ring.word64(self.control + l::PRODUCER_POSITION)
    }

    fn consumer_position(&self) -> &AtomicU64 {
        self.ring.word64(self.control + l::CONSUMER_POSITION)
    }

    fn wait(&self, futex: usize, waiting: usize) -> Wait {
        Wait { word: self.ring.word32(self.control + futex), waiting: self.ring.word32(self.control + waiting) as *const AtomicU32 as *const AtomicI32 }
    }

    fn wake(&self, futex: usize, waiting: usize) -> Wake {
        Wake::new(&self.ring, self.control + futex, self.control + waiting)
    }

    /// The 8 bytes at `index` of the ring's data, loaded once: a frame's header and body are read only so.
    fn bytes8(&self, index: usize) -> [u8; 8] {
        assert!(index % l::FRAME_ALIGNMENT == 0 && index + 8 <= self.capacity, "{}: a read at ring offset {index} is outside the ring", self.name);
        unsafe { &*(self.data.add(index) as *const AtomicU64) }.load(Ordering::Relaxed).to_ne_bytes()
    }

    /// Copies the `length` bytes at `index` of the ring's data into `out`, 8 at a time (frames are 8-byte aligned).
    fn copy_out(&self, index: usize, length: usize, out: &mut Vec<u8>) {
        out.resize(l::align(length), 0);
        for (chunk, at) in out.chunks_exact_mut(8).zip((index..).step_by(8)) {
            chunk.copy_from_slice(&self.bytes8(at));
        }
        out.truncate(length);
    }

    fn check_positions(&self, producer: u64, consumer: u64) -> Result<(), RingError> {
        let fault = if consumer % l::FRAME_ALIGNMENT as u64 != 0 {
            format!("consumer position {consumer} is not 8-byte aligned")
        } else if producer % l::FRAME_ALIGNMENT as u64 != 0 {
            format!("producer position {producer} is not 8-byte aligned")
        } else if producer < consumer {
            format!("producer position {producer} is behind consumer position {consumer}")
        } else if producer - consumer > self.capacity as u64 {
            format!("producer position {producer} is more than the capacity ahead of the consumer")
        } else {
            return Ok(());
        };
        Err(RingError(format!(
            "{}: corrupt positions: {fault} (producer at {producer}, consumer at {consumer}, capacity {})",
            self.name, self.capacity
        )))
    }
}

unsafe impl Send for RingEnd {}

/// One frame as it was read, once, out of the ring: its body a copy the bridge cannot change while it is handled.
pub struct Frame<'a> {
    pub frame_type: u16,
    pub flags: u16,
    pub sequence: u64,
    pub body: &'a [u8],
}

/// The reading side of the to-worker ring (single consumer). The consumer position is released once per
/// poll, not per frame.
pub struct Consumer {
    end: RingEnd,
    frames: Wait,
    space: Wake,
    head: u64,
    tail: u64,
    handling: Option<u64>,
    /// The body of the frame being handled, copied out of the ring; reused from frame to frame.
    body: Vec<u8>,
}

impl Consumer {
    fn new(end: RingEnd) -> Consumer {
        let head = end.consumer_position().load(Ordering::Acquire);
        Consumer { frames: end.wait(l::DATA_FUTEX, l::CONSUMER_WAITING), space: end.wake(l::SPACE_FUTEX, l::PRODUCER_WAITING), head, tail: head, handling: None, body: Vec::new(), end }
    }

    pub fn name(&self) -> &str {
        &self.end.name
    }

    /// Hands up to `limit` published frames to `handler` in place; returns how many. A handler's error stops
    /// the poll (the frames before it stay consumed).
    pub fn poll<E: From<RingError>>(&mut self, limit: usize, mut handler: impl FnMut(&mut Self, Frame<'_>) -> Result<(), E>) -> Result<usize, E> {
        if self.head == self.tail {
            // The head is checked with the tail: it started at the shared consumer position, which the peer
            // may have set to anything, and only moves by checked frames.
            let tail = self.end.producer_position().load(Ordering::Acquire);
            self.end.ring.check_whole()?;
            self.end.check_positions(tail, self.head)?;
            self.tail = tail;
            if self.head == tail {
                return Ok(0);
            }
        }
        let mut count = 0;
        let result = self.take_frames(limit, &mut count, &mut handler);
        self.handling = None;
        self.publish(self.head);
        result.map(|_| count)
    }

    fn take_frames<E: From<RingError>>(&mut self, limit: usize, count: &mut usize, handler: &mut impl FnMut(&mut Self, Frame<'_>) -> Result<(), E>) -> Result<(), E> {
        let (capacity, mask, max_frame) = (self.end.capacity, self.end.capacity as u64 - 1, self.end.max_frame);
        while self.head < self.tail && *count < limit {
            let index = (self.head & mask) as usize;
            // Each field read once from shared memory, then checked; a PADDING frame may be these 8 bytes only.
            let header = self.end.bytes8(index);
            self.end.ring.check_whole()?;
            let length = u32::from_le_bytes(header[0..4].try_into().unwrap()) as usize;
            let frame_type = u16::from_le_bytes(header[4..6].try_into().unwrap());
            let flags = u16::from_le_bytes(header[6..8].try_into().unwrap());
            let aligned = l::align(length) as u64;
            let published = self.tail - self.head;
            if frame_type == l::PADDING {
                if length < l::FRAME_ALIGNMENT || aligned > (capacity - index) as u64 || aligned > published {
                    return Err(self.corrupt(format!("impossible length {length} for a PADDING frame"), index).into());
                }
                self.head += aligned;
                continue;
            }
            if length < l::FRAME_HEADER || length > max_frame || aligned > (capacity - index) as u64 || aligned > published || !l::is_known_type(frame_type) {
                let problem = if l::is_known_type(frame_type) {
                    format!("impossible length {length} for a {} frame", l::frame_name(frame_type))
                } else {
                    format!("unknown frame type {frame_type}")
                };
                return Err(self.corrupt(problem, index).into());
            }
            let sequence = u64::from_le_bytes(self.end.bytes8(index + 8));
            let mut body = std::mem::take(&mut self.body);
            self.end.copy_out(index + l::FRAME_HEADER, length - l::FRAME_HEADER, &mut body);
            self.end.ring.check_whole()?;
            self.handling = Some(self.head);
            self.head += aligned;
            *count += 1;
            let handled = handler(self, Frame { frame_type, flags, sequence, body: &body });
            self.body = body;
            handled?;
        }
        Ok(())
    }

    /// For a handler that must wait for room to answer: frees the frames handled before the current one, so the
    /// bridge can go on and drain the answers already written.
    pub fn release_handled(&mut self) {
        self.publish(self.handling.unwrap_or(self.head));
    }

    fn publish(&self, position: u64) {
        self.end.consumer_position().store(position, Ordering::Release);
        fence(Ordering::SeqCst);
        self.space.if_waiting();
    }

    fn corrupt(&self, what: String, index: usize) -> RingError {
        RingError(format!(
            "{}: corrupt frame at position {} (ring offset {index}): {what} (frames are {} to {} bytes, 8-byte aligned)",
            self.end.name, self.head, l::FRAME_HEADER, self.end.max_frame
        ))
    }

    pub fn has_frames(&self) -> bool {
        self.head != self.end.producer_position().load(Ordering::Acquire)
    }

    pub fn await_frames(&self, timeout: Duration) {
        let producer = self.end.producer_position();
        let head = self.head;
        self.frames.until(|| producer.load(Ordering::Acquire) != head, timeout);
    }
}

unsafe impl Send for Consumer {}

/// The writing side of the from-worker ring (single producer): frames are written in place and made visible
/// by `publish`, one store (and a wake only if the bridge sleeps) per batch.
pub struct Producer {
    end: RingEnd,
    frames: Wake,
    space: Wait,
    tail: u64,
    published: u64,
    cached_head: u64,
}

impl Producer {
    fn new(end: RingEnd) -> Producer {
        let tail = end.producer_position().load(Ordering::Acquire);
        let cached_head = end.consumer_position().load(Ordering::Acquire);
        Producer { frames: end.wake(l::DATA_FUTEX, l::CONSUMER_WAITING), space: end.wait(l::SPACE_FUTEX, l::PRODUCER_WAITING), tail, published: tail, cached_head, end }
    }

    /// The most body bytes one frame can carry.
    pub fn max_body(&self) -> usize {
        self.end.max_frame - l::FRAME_HEADER
    }

    /// Writes one frame whose body `write_body` fills (exactly `body_length` bytes); false when the ring has
    /// no room now.
    pub fn try_write(&mut self, frame_type: u16, sequence: u64, body_length: usize, write_body: impl Fn(&mut [u8])) -> Result<bool, RingError> {
        if body_length > self.max_body() {
            return Err(RingError(format!(
                "{}: a {} frame of {} bytes does not fit: frames are at most {} bytes, half the ring's capacity of {}; give the session larger rings",
                self.end.name, l::frame_name(frame_type), l::FRAME_HEADER + body_length, self.end.max_frame, self.end.capacity
            )));
        }
        let length = l::FRAME_HEADER + body_length;
        let aligned = l::align(length);
        let capacity = self.end.capacity;
        let mut index = (self.tail & (capacity as u64 - 1)) as usize;
        let to_end = capacity - index;
        let padding = if aligned > to_end { to_end } else { 0 };
        // Positions wrap at 2^64, as the C library's do: no ring gets that far, so only a corrupt position comes near
        // it, and once published past it, it is behind the consumer's, which the check below refuses.
        let needed = self.tail.wrapping_add((padding + aligned) as u64);
        let mut head = self.cached_head;
        if needed.wrapping_sub(head) > capacity as u64 {
            head = self.end.consumer_position().load(Ordering::Acquire);
            self.cached_head = head;
        }
        // Checked on every write, before a byte is written: the tail started at the shared producer position and the
        // head may be the shared consumer position as this producer found it, both the peer's to corrupt (an
        // unaligned tail just before the ring's end would put a PADDING frame past it). The tail moves by aligned
        // frames only, so checking what was published checks it too.
        self.end.ring.check_whole()?;
        self.end.check_positions(self.published, head)?;
        if needed.wrapping_sub(head) > capacity as u64 {
            return Ok(false);
        }
        if padding > 0 {
            // The gap may be only 8 bytes: a PADDING frame is just its length, type and flags.
            let at = unsafe { std::slice::from_raw_parts_mut(self.end.data.add(index), 8) };
            at[0..4].copy_from_slice(&(padding as u32).to_le_bytes());
            at[4..8].copy_from_slice(&[0, 0, 0, 0]);
            self.tail = self.tail.wrapping_add(padding as u64);
            index = 0;
        }
        let frame = unsafe { std::slice::from_raw_parts_mut(self.end.data.add(index), length) };
        frame[0..4].copy_from_slice(&(length as u32).to_le_bytes());
        frame[4..6].copy_from_slice(&frame_type.to_le_bytes());
        frame[6..8].copy_from_slice(&0u16.to_le_bytes());
        frame[8..16].copy_from_slice(&sequence.to_le_bytes());
        write_body(&mut frame[l::FRAME_HEADER..]);
        self.tail = self.tail.wrapping_add(aligned as u64);
        // A frame written to a file cut short went to private pages, not to the bridge.
        self.end.ring.check_whole()?;
        Ok(true)
    }

    /// Makes every written frame visible to the bridge, waking it if it sleeps.
    pub fn publish(&mut self) {
        if self.tail == self.published {
            return;
        }
        self.end.producer_position().store(self.tail, Ordering::Release);
        self.published = self.tail;
        fence(Ordering::SeqCst);
        self.frames.if_waiting();
    }

    /// Publishes, then waits until the bridge has released room (or about `timeout`).
    pub fn await_space(&mut self, timeout: Duration) {
        self.publish();
        let consumer = self.end.consumer_position();
        let head = self.cached_head;
        self.space.until(|| consumer.load(Ordering::Acquire) != head, timeout);
        self.cached_head = consumer.load(Ordering::Acquire);
    }
}

unsafe impl Send for Producer {}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::AtomicUsize;

    const TOKEN: &str = "a-session-token";
    const CAPACITY: usize = l::MIN_CAPACITY as usize;

    /// A folder of its own per test, removed when the test ends.
    pub(crate) struct Folder(pub(crate) PathBuf);

    impl Folder {
        pub(crate) fn new() -> Folder {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!("flink-bridge-ring-test-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
            std::fs::create_dir_all(&path).unwrap();
            Folder(path)
        }

        /// A ring file as the bridge creates it: the header filled in, positions at zero, mode 0600.
        fn ring_file(&self, to_worker: u32, from_worker: u32, size: usize) -> PathBuf {
            let mut bytes = vec![0u8; size];
            let mut put = |offset: usize, value: &[u8]| {
                if offset + value.len() <= bytes.len() {
                    bytes[offset..offset + value.len()].copy_from_slice(value);
                }
            };
            put(l::MAGIC_OFFSET, &l::MAGIC.to_le_bytes());
            put(l::VERSION_OFFSET, &l::VERSION.to_le_bytes());
            put(l::HEADER_SIZE_OFFSET, &(l::HEADER_SIZE as u32).to_le_bytes());
            put(l::TO_WORKER_CAPACITY_OFFSET, &to_worker.to_le_bytes());
            put(l::FROM_WORKER_CAPACITY_OFFSET, &from_worker.to_le_bytes());
            put(l::TOKEN_OFFSET, TOKEN.as_bytes());
            let path = self.0.join(format!("session{SUFFIX}"));
            std::fs::write(&path, bytes).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            path
        }

        pub(crate) fn ring(&self) -> Arc<RingFile> {
            let path = self.ring_file(CAPACITY as u32, CAPACITY as u32, l::file_size(CAPACITY, CAPACITY));
            RingFile::open(path, TOKEN).unwrap()
        }
    }

    impl Drop for Folder {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A consumer of the from-worker ring: reads back what the worker's producer writes, as the bridge does.
    pub(crate) fn reader_of_answers(ring: &Arc<RingFile>) -> Consumer {
        let data = l::HEADER_SIZE + ring.to_worker_capacity;
        Consumer::new(RingEnd::new(ring, l::FROM_WORKER_CONTROL_OFFSET, data, ring.from_worker_capacity, "from-worker"))
    }

    /// A producer on the to-worker ring: writes inputs, as the bridge does.
    pub(crate) fn writer_of_inputs(ring: &Arc<RingFile>) -> Producer {
        Producer::new(RingEnd::new(ring, l::TO_WORKER_CONTROL_OFFSET, l::HEADER_SIZE, ring.to_worker_capacity, "to-worker"))
    }

    /// What the bridge sees of the worker in the header: its heartbeat and the closed flag.
    pub(crate) fn worker_heartbeat_and_closed(ring: &RingFile) -> (u64, u32) {
        (ring.word64(l::WORKER_HEARTBEAT_OFFSET).load(Ordering::Acquire), ring.word32(l::CLOSED_OFFSET).load(Ordering::Acquire))
    }

    /// Sets a shared position of the ring whose control block is at `control`, as a peer (or corruption) would.
    fn set(ring: &RingFile, control: usize, position: usize, value: u64) {
        ring.word64(control + position).store(value, Ordering::Release);
    }

    /// Writes a frame header at `index` of the to-worker ring, as the bridge would.
    fn put_frame(ring: &RingFile, index: usize, length: u32, frame_type: u16, sequence: u64) {
        let at = l::HEADER_SIZE + index;
        let header = unsafe { std::slice::from_raw_parts_mut(ring.base.add(at), l::FRAME_HEADER.min(CAPACITY - index)) };
        header[0..4].copy_from_slice(&length.to_le_bytes());
        header[4..6].copy_from_slice(&frame_type.to_le_bytes());
        if header.len() == l::FRAME_HEADER {
            header[8..16].copy_from_slice(&sequence.to_le_bytes());
        }
    }

    type Read = (u16, u64, Vec<u8>);

    /// Every frame the consumer can take now (a read outside the ring's data panics in `RingEnd::bytes8`).
    fn take_all(consumer: &mut Consumer) -> Result<Vec<Read>, RingError> {
        let mut read = Vec::new();
        loop {
            let taken = consumer.poll(usize::MAX, |_, frame| {
                read.push((frame.frame_type, frame.sequence, frame.body.to_vec()));
                Ok::<_, RingError>(())
            })?;
            if taken == 0 {
                return Ok(read);
            }
        }
    }

    fn refused(result: Result<impl std::fmt::Debug, RingError>, expected: &str) {
        match result {
            Err(RingError(text)) => assert!(text.contains(expected), "{text}\ndoes not say: {expected}"),
            Ok(accepted) => panic!("accepted ({accepted:?}); expected a refusal saying: {expected}"),
        }
    }

    fn body(sequence: u64, length: usize) -> Vec<u8> {
        (0..length).map(|i| (sequence as usize * 31 + i) as u8).collect()
    }

    #[test]
    fn frames_go_through_in_order_and_wrap_past_the_end_with_padding() {
        let folder = Folder::new();
        let ring = folder.ring();
        let (mut answers, mut reader) = (ring.producer(), reader_of_answers(&ring));
        // Bodies of 1000 bytes make 1016-byte frames: four leave 32 bytes at the end of the first lap, too few for the
        // fifth frame; the second lap ends 8 bytes short, room for a PADDING frame's length, type and flags only.
        let lengths = [1000, 1000, 1000, 1000, 200, 1000, 1000, 1000, 808, 0, 2000, 1000, 1000, 1000, 1000];
        let mut expected = Vec::new();
        let mut paddings = Vec::new();
        for (sequence, &length) in lengths.iter().enumerate() {
            let sequence = sequence as u64 + 1;
            let before = answers.tail;
            let written = body(sequence, length);
            assert!(answers.try_write(l::OUTPUT, sequence, length, |out| out.copy_from_slice(&written)).unwrap());
            let aligned = l::align(l::FRAME_HEADER + length) as u64;
            if answers.tail - before > aligned {
                let index = (before as usize) & (CAPACITY - 1);
                let gap = unsafe { std::slice::from_raw_parts(reader.end.data.add(index), 8) };
                paddings.push((u32::from_le_bytes(gap[0..4].try_into().unwrap()) as usize, u16::from_le_bytes(gap[4..6].try_into().unwrap())));
                assert_eq!(index + paddings.last().unwrap().0, CAPACITY, "a PADDING frame fills the gap to the end");
            }
            expected.push((l::OUTPUT, sequence, written));
            answers.publish();
            // Read after every second frame, so a PADDING frame comes both first in a poll and between two frames.
            if sequence % 2 == 0 {
                let read = take_all(&mut reader).unwrap();
                assert_eq!(read, std::mem::take(&mut expected));
                assert_eq!(reader.end.consumer_position().load(Ordering::Acquire), answers.tail, "the consumer published its head");
            }
        }
        assert_eq!(take_all(&mut reader).unwrap(), expected);
        assert_eq!(paddings[..2], [(32, l::PADDING), (8, l::PADDING)], "paddings: {paddings:?}");
        assert!(answers.tail > 2 * CAPACITY as u64, "the frames went round the ring more than twice");
        assert!(!reader.has_frames());
    }

    #[test]
    fn a_full_ring_takes_frames_again_once_the_consumer_frees_room() {
        let folder = Folder::new();
        let ring = folder.ring();
        let (mut answers, mut reader) = (ring.producer(), reader_of_answers(&ring));
        let mut sequence = 0;
        while answers.try_write(l::OUTPUT, sequence + 1, 500, |out| out.fill(sequence as u8)).unwrap() {
            sequence += 1;
        }
        assert_eq!(sequence, (CAPACITY / l::align(l::FRAME_HEADER + 500)) as u64, "the ring holds as many frames as fit");
        answers.publish();
        assert_eq!(take_all(&mut reader).unwrap().len() as u64, sequence);
        assert!(answers.try_write(l::OUTPUT, sequence + 1, 500, |_| {}).unwrap(), "the room the consumer freed is used again");
    }

    #[test]
    fn a_frame_larger_than_half_the_ring_is_refused() {
        let folder = Folder::new();
        let ring = folder.ring();
        let mut answers = ring.producer();
        assert_eq!(answers.max_body(), CAPACITY / 2 - l::FRAME_HEADER);
        refused(answers.try_write(l::OUTPUT, 1, answers.max_body() + 1, |_| {}), "does not fit");
        assert!(answers.try_write(l::OUTPUT, 1, answers.max_body(), |_| {}).unwrap());
    }

    /// The consumer of the to-worker ring over positions (producer, consumer) and one frame header at the
    /// consumer's position: what its poll makes of them.
    fn consume(producer: u64, consumer: u64, frame: Option<(u32, u16)>) -> Result<Vec<Read>, RingError> {
        let folder = Folder::new();
        let ring = folder.ring();
        set(&ring, l::TO_WORKER_CONTROL_OFFSET, l::CONSUMER_POSITION, consumer);
        set(&ring, l::TO_WORKER_CONTROL_OFFSET, l::PRODUCER_POSITION, producer);
        if let Some((length, frame_type)) = frame {
            put_frame(&ring, (consumer as usize) & (CAPACITY - 1), length, frame_type, 1);
        }
        take_all(&mut ring.consumer())
    }

    #[test]
    fn the_consumer_refuses_corrupt_positions() {
        let capacity = CAPACITY as u64;
        refused(consume(0, 64, None), "producer position 0 is behind consumer position 64");
        refused(consume(capacity + 8, 0, None), "is more than the capacity ahead of the consumer");
        refused(consume(2 * capacity, capacity - 8, None), "is more than the capacity ahead of the consumer");
        refused(consume(12, 0, None), "producer position 12 is not 8-byte aligned");
        refused(consume(16, 4, None), "consumer position 4 is not 8-byte aligned");
        refused(consume(capacity - 3, capacity - 3, None), "is not 8-byte aligned");
    }

    #[test]
    fn the_consumer_refuses_positions_at_the_top_of_the_range_or_wrapped_past_it() {
        let top = u64::MAX - 7;
        // A producer that went past 2^64 is behind its consumer: refused, not read as a ring's worth of frames.
        refused(consume(16, top, None), "producer position 16 is behind consumer position");
        refused(consume(u64::MAX, top, None), "is not 8-byte aligned");
        refused(consume(top, 0, None), "is more than the capacity ahead of the consumer");
        // 8 bytes published below 2^64: a 16-byte frame there runs past them, and head + length would wrap.
        refused(consume(top, top - 8, Some((16, l::RECORD))), "impossible length 16 for a RECORD frame");
        refused(consume(top, top - 8, Some((16, l::PADDING))), "impossible length 16 for a PADDING frame");
        assert_eq!(consume(top, top - 8, Some((8, l::PADDING))).unwrap(), [], "a PADDING frame up to the top is taken");
        assert_eq!(consume(top, top, None).unwrap(), [], "nothing published at the top of the range");
    }

    #[test]
    fn the_consumer_refuses_frames_whose_length_the_positions_or_the_ring_do_not_allow() {
        let capacity = CAPACITY as u64;
        let max_frame = (CAPACITY / 2) as u32;
        refused(consume(32, 0, Some((40, l::RECORD))), "impossible length 40 for a RECORD frame");
        refused(consume(32, 0, Some((33, l::RECORD))), "impossible length 33 for a RECORD frame");
        refused(consume(32, 0, Some((15, l::RECORD))), "impossible length 15 for a RECORD frame");
        refused(consume(32, 0, Some((0, l::BARRIER))), "impossible length 0 for a BARRIER frame");
        refused(consume(capacity, 0, Some((max_frame + 8, l::RECORD))), &format!("impossible length {} for a RECORD frame", max_frame + 8));
        refused(consume(capacity, 0, Some((u32::MAX, l::RECORD))), &format!("impossible length {} for a RECORD frame", u32::MAX));
        refused(consume(32, 0, Some((4, l::PADDING))), "impossible length 4 for a PADDING frame");
        refused(consume(32, 0, Some((40, l::PADDING))), "impossible length 40 for a PADDING frame");
        refused(consume(32, 0, Some((16, 99))), "unknown frame type 99");
        // A frame never runs past the ring's end: 16 bytes before it, a 32-byte frame is refused even with more published.
        refused(consume(capacity + 32, capacity - 16, Some((32, l::RECORD))), "impossible length 32 for a RECORD frame");
        refused(consume(capacity + 32, capacity - 16, Some((32, l::PADDING))), "impossible length 32 for a PADDING frame");
        let read = consume(24, 0, Some((24, l::RECORD))).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read, [(l::RECORD, 1, vec![0; 8])], "a frame that fits what is published is read");
    }

    #[test]
    fn frames_before_a_corrupt_one_are_handed_over_and_released() {
        let folder = Folder::new();
        let ring = folder.ring();
        put_frame(&ring, 0, 16, l::BARRIER, 7);
        put_frame(&ring, 16, 9999, l::RECORD, 8);
        set(&ring, l::TO_WORKER_CONTROL_OFFSET, l::PRODUCER_POSITION, 64);
        let mut inputs = ring.consumer();
        let mut handed = Vec::new();
        let result = inputs.poll(10, |_, frame| {
            handed.push(frame.sequence);
            Ok::<_, RingError>(())
        });
        refused(result, "impossible length 9999 for a RECORD frame");
        assert_eq!(handed, [7]);
        assert_eq!(ring.word64(l::TO_WORKER_CONTROL_OFFSET + l::CONSUMER_POSITION).load(Ordering::Acquire), 16);
    }

    #[test]
    fn a_frame_is_read_once_so_the_bridge_cannot_change_it_while_it_is_handled() {
        let folder = Folder::new();
        let ring = folder.ring();
        put_frame(&ring, 0, 24, l::RECORD, 1);
        let body_at = unsafe { ring.base.add(l::HEADER_SIZE + l::FRAME_HEADER) };
        unsafe { std::ptr::write_bytes(body_at, 7, 8) };
        set(&ring, l::TO_WORKER_CONTROL_OFFSET, l::PRODUCER_POSITION, 24);
        let mut inputs = ring.consumer();
        let taken = inputs.poll(1, |_, frame| {
            // A bridge may write the ring at any time: the frame handed over is what was read, checked, once.
            put_frame(&ring, 0, u32::MAX, 99, 2);
            unsafe { std::ptr::write_bytes(body_at, 0xEE, 8) };
            assert_eq!((frame.frame_type, frame.sequence, frame.body), (l::RECORD, 1, &[7u8; 8][..]));
            Ok::<_, RingError>(())
        });
        assert_eq!(taken.unwrap(), 1);
    }

    /// The worker's producer over the from-worker ring, its shared positions set to (producer, consumer) first:
    /// what its first write makes of them.
    fn produce(producer: u64, consumer: u64) -> (Result<bool, RingError>, Producer) {
        let folder = Folder::new();
        let ring = folder.ring();
        set(&ring, l::FROM_WORKER_CONTROL_OFFSET, l::PRODUCER_POSITION, producer);
        set(&ring, l::FROM_WORKER_CONTROL_OFFSET, l::CONSUMER_POSITION, consumer);
        let mut answers = ring.producer();
        (answers.try_write(l::OUTPUT, 1, 8, |out| out.fill(1)), answers)
    }

    #[test]
    fn the_producer_refuses_corrupt_peer_positions_before_it_writes() {
        let capacity = CAPACITY as u64;
        // Left unaligned just before the end: a PADDING frame there would be written past the ring's last byte.
        refused(produce(capacity - 3, capacity - 3).0, "consumer position 4093 is not 8-byte aligned");
        refused(produce(capacity - 8, capacity - 3).0, "is not 8-byte aligned");
        refused(produce(12, 8).0, "producer position 12 is not 8-byte aligned");
        refused(produce(0, 4).0, "consumer position 4 is not 8-byte aligned");
        refused(produce(0, 64).0, "producer position 0 is behind consumer position 64");
        refused(produce(2 * capacity, 0).0, "is more than the capacity ahead of the consumer");
        refused(produce(16, u64::MAX - 7).0, "is behind consumer position");
        assert!(produce(capacity - 8, capacity - 8).0.unwrap(), "a frame after an 8-byte PADDING frame");
    }

    #[test]
    fn a_producer_position_that_wraps_past_the_top_is_refused_at_the_next_write() {
        let top = u64::MAX - 7;
        // As the C library does: the first frame goes to the ring's start (after 8 bytes of PADDING), and the
        // position it publishes, past 2^64, is behind the consumer's.
        let (first, mut answers) = produce(top, top);
        assert!(first.unwrap());
        assert_eq!(answers.tail, 24);
        // Not yet published, the wrapped tail goes on: the frames stay inside the ring.
        assert!(answers.try_write(l::OUTPUT, 2, 8, |_| {}).unwrap());
        answers.publish();
        refused(answers.try_write(l::OUTPUT, 3, 8, |_| {}), "producer position 48 is behind consumer position");
    }

    #[test]
    fn a_file_not_the_size_its_header_says_is_refused_when_opened() {
        let folder = Folder::new();
        let (to_worker, from_worker) = (CAPACITY as u32, 2 * CAPACITY as u32);
        let whole = l::file_size(to_worker as usize, from_worker as usize);
        for size in [0, 100, l::HEADER_SIZE - 1] {
            let path = folder.ring_file(to_worker, from_worker, size);
            refused(RingFile::open(path.clone(), TOKEN).map(|_| ()), "shorter than a ring file's header");
            // Closing the ring of a session whose process died maps only a header that is there.
            mark_closed(&path);
            assert_eq!(std::fs::metadata(&path).unwrap().len() as usize, size);
        }
        for size in [l::HEADER_SIZE, whole - CAPACITY, whole - 8, whole + 4096] {
            let path = folder.ring_file(to_worker, from_worker, size);
            refused(RingFile::open(path, TOKEN).map(|_| ()), &format!("file size is {size}, expected {whole}"));
        }
        let path = folder.ring_file(to_worker, from_worker, whole);
        assert!(RingFile::open(path, TOKEN).is_ok());
    }

    #[test]
    fn a_header_this_side_does_not_understand_is_refused_when_opened() {
        let folder = Folder::new();
        let size = l::file_size(CAPACITY, CAPACITY);
        let opened = |edit: &dyn Fn(&mut Vec<u8>), token: &str| {
            let path = folder.ring_file(CAPACITY as u32, CAPACITY as u32, size);
            let mut bytes = std::fs::read(&path).unwrap();
            edit(&mut bytes);
            std::fs::write(&path, bytes).unwrap();
            RingFile::open(path, token).map(|_| ())
        };
        refused(opened(&|b| b[0] ^= 1, TOKEN), "does not start with the ring magic");
        refused(opened(&|b| b[l::VERSION_OFFSET] = 2, TOKEN), "version is 2, expected 1");
        refused(opened(&|b| b[l::HEADER_SIZE_OFFSET + 1] = 0, TOKEN), "header size is 0, expected 4096");
        refused(opened(&|b| b[l::TO_WORKER_CAPACITY_OFFSET..][..4].copy_from_slice(&4097u32.to_le_bytes()), TOKEN), "to-worker ring capacity 4097");
        refused(opened(&|b| b[l::FROM_WORKER_CAPACITY_OFFSET..][..4].copy_from_slice(&2048u32.to_le_bytes()), TOKEN), "from-worker ring capacity 2048");
        refused(opened(&|_| {}, "another-token"), "the session token does not match");
        assert!(opened(&|_| {}, TOKEN).is_ok());
    }

    #[test]
    fn a_ring_file_cut_short_while_mapped_fails_its_session_not_the_process() {
        let folder = Folder::new();
        let ring = folder.ring();
        put_frame(&ring, 0, 24, l::RECORD, 1);
        set(&ring, l::TO_WORKER_CONTROL_OFFSET, l::PRODUCER_POSITION, 24);
        let (mut inputs, mut answers) = (ring.consumer(), ring.producer());
        // As another process may at any time: the file cut to its header page, the rings' data gone.
        OpenOptions::new().write(true).open(&ring.path).unwrap().set_len(l::HEADER_SIZE as u64).unwrap();
        let cut = format!("{}: the ring file was cut short while mapped", ring.path.display());
        refused(take_all(&mut inputs), &cut);
        refused(answers.try_write(l::OUTPUT, 1, 8, |out| out.fill(1)), &cut);
        assert!(ring.bridge_lost(i64::MAX).is_some_and(|why| why.contains(&cut)));
        // The process goes on, and so do its other rings.
        let other_folder = Folder::new();
        let other = other_folder.ring();
        assert!(other.producer().try_write(l::OUTPUT, 1, 8, |out| out.fill(1)).unwrap());
    }

    /// A seeded stream of numbers for the ring images below (splitmix64): the same seed gives the same images.
    struct Images(u64);

    impl Images {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, bound: u64) -> u64 {
            self.next() % bound
        }

        /// A position as a peer could leave one: in or near the ring, just past a lap, unaligned, near the top of
        /// the 64-bit range, or anything.
        fn position(&mut self, base: u64) -> u64 {
            let capacity = CAPACITY as u64;
            match self.below(10) {
                0..=4 => base.wrapping_add(self.below(capacity + 1) / 8 * 8),
                5 => base.wrapping_add(self.below(capacity + 16)),
                6 => base.wrapping_add(capacity).wrapping_sub(self.below(24)),
                7 => u64::MAX - self.below(2 * capacity),
                8 => self.below(4 * capacity),
                _ => self.next(),
            }
        }

        /// A frame length as a peer could write one: a fitting one, one just off, zero, past the ring, or anything.
        fn length(&mut self) -> u32 {
            match self.below(5) {
                0 => (l::FRAME_HEADER as u64 + self.below(CAPACITY as u64 / 2)) as u32,
                1 => self.below(2 * l::FRAME_HEADER as u64) as u32,
                2 => (CAPACITY as u64 - self.below(32)) as u32,
                3 => u32::MAX - self.below(16) as u32,
                _ => self.next() as u32,
            }
        }
    }

    fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
        std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
    }

    /// Arbitrary ring images for both sides: the bridge's positions and frame headers for the worker's consumer, the
    /// bridge's positions for the worker's producer. Each must end in frames read from inside the ring's data (a read
    /// outside it panics) or in a RingError, never a panic, a stray access or a loop. A seeded loop rather than libFuzzer (cargo-fuzz is not
    /// packaged in Debian): FLINK_BRIDGE_RING_IMAGES images (100,000 by default; `./flink-bridge fuzz` runs 10 million
    /// a minute asked in a release build), FLINK_BRIDGE_RING_SEED to replay a run, whose seed is printed.
    #[test]
    fn arbitrary_ring_images_end_in_frames_or_a_ring_error() {
        let images: u64 = setting("FLINK_BRIDGE_RING_IMAGES", 100_000);
        let seed: u64 = setting("FLINK_BRIDGE_RING_SEED", now_millis() as u64);
        eprintln!("ring images: {images} from seed {seed} (FLINK_BRIDGE_RING_SEED={seed} replays them)");
        let folder = Folder::new();
        let ring = folder.ring();
        let mut next = Images(seed);
        let (mut frames, mut refusals) = (0u64, 0u64);
        for _ in 0..images {
            let consumer_position = next.position(0);
            let producer_position = next.position(consumer_position);
            set(&ring, l::TO_WORKER_CONTROL_OFFSET, l::CONSUMER_POSITION, consumer_position);
            set(&ring, l::TO_WORKER_CONTROL_OFFSET, l::PRODUCER_POSITION, producer_position);
            for _ in 0..next.below(4) {
                let frame_type = if next.below(4) == 0 { next.next() as u16 } else { next.below(8) as u16 };
                // Frames start 8-byte aligned; a position that is not is refused before any frame is read.
                let index = next.below(CAPACITY as u64 / 8) as usize * 8;
                let (length, sequence) = (next.length(), next.next());
                put_frame(&ring, index, length, frame_type, sequence);
            }
            let mut consumer = ring.consumer();
            for _ in 0..4 {
                match consumer.poll(64, |_, frame| {
                    assert!(l::FRAME_HEADER + frame.body.len() <= l::max_frame_length(CAPACITY), "a body longer than a frame (seed {seed})");
                    Ok::<_, RingError>(())
                }) {
                    Ok(0) => break,
                    Ok(taken) => frames += taken as u64,
                    Err(_) => {
                        refusals += 1;
                        break;
                    }
                }
            }

            let consumer_position = next.position(0);
            let producer_position = next.position(consumer_position);
            set(&ring, l::FROM_WORKER_CONTROL_OFFSET, l::CONSUMER_POSITION, consumer_position);
            set(&ring, l::FROM_WORKER_CONTROL_OFFSET, l::PRODUCER_POSITION, producer_position);
            let mut producer = ring.producer();
            for _ in 0..1 + next.below(3) {
                let length = next.below(producer.max_body() as u64 + 1) as usize;
                match producer.try_write(l::OUTPUT, next.next(), length, |body| body.fill(0x5A)) {
                    Ok(_) => frames += 1,
                    Err(_) => {
                        refusals += 1;
                        break;
                    }
                }
            }
        }
        eprintln!("ring images: {images} images, {frames} frames taken or written, {refusals} refused as corrupt");
        assert!(frames > 0 && refusals > 0, "the images should both pass and fail the checks: {frames} frames, {refusals} refusals");
    }
}
