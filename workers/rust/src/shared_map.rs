//! A mapping of a file another process may cut short. Touching a page past a mapped file's end raises SIGBUS,
//! which would end the whole worker for one bad ring file. So every such mapping is registered here, and a SIGBUS
//! inside one replaces the whole mapping with zeroed private pages and marks it cut: the access that faulted runs
//! again on those pages, as does every later one, and the ring reports the cut (`cut_short`) before it uses what
//! it read. Wayland's compositors guard their clients' shared memory the same way (wl_shm_buffer_begin_access).
//!
//! Sound because the handler only loads and stores atomics and calls mmap and sigaction (system calls, safe in a
//! signal handler), every read of the mapping is an atomic load whose value is checked (ring.rs), and a mapping
//! leaves the table before it is unmapped, so its address range is never another mapping's while registered. A
//! SIGBUS anywhere else goes to the handler that was there before (Rust's own, which ends the process).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};

use memmap2::MmapMut;

/// How many mappings one process can guard at once: one per open shm session, and one while a dead session
/// process's ring is marked closed.
const SLOTS: usize = 4096;

struct Slot {
    start: AtomicUsize,
    end: AtomicUsize,
    cut: AtomicBool,
}

static TABLE: [Slot; SLOTS] = [const { Slot { start: AtomicUsize::new(0), end: AtomicUsize::new(0), cut: AtomicBool::new(false) } }; SLOTS];
static INSTALL: Once = Once::new();
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

type Handler = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);

/// A shared file mapping guarded against the file shrinking under it.
pub struct SharedMap {
    slot: &'static Slot,
    map: MmapMut,
}

impl SharedMap {
    /// Guards `map`; an error when this process already guards SLOTS mappings.
    pub fn new(mut map: MmapMut) -> Result<SharedMap, String> {
        INSTALL.call_once(install);
        let start = map.as_mut_ptr() as usize;
        let slot = TABLE
            .iter()
            .find(|slot| slot.start.compare_exchange(0, start, Ordering::AcqRel, Ordering::Relaxed).is_ok())
            .ok_or_else(|| format!("this process maps {SLOTS} ring files already"))?;
        slot.end.store(start + map.len(), Ordering::Release);
        Ok(SharedMap { slot, map })
    }

    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.map.as_mut_ptr()
    }

    /// Whether the file was found cut short: everything read from the mapping since is zeros, written is lost.
    pub fn cut_short(&self) -> bool {
        self.slot.cut.load(Ordering::Acquire)
    }
}

impl Drop for SharedMap {
    fn drop(&mut self) {
        // Out of the table before `map` is unmapped (fields drop after this), never naming a range another mapping
        // may take next.
        self.slot.end.store(0, Ordering::Release);
        self.slot.cut.store(false, Ordering::Release);
        self.slot.start.store(0, Ordering::Release);
    }
}

fn install() {
    unsafe {
        let mut previous: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut previous);
        let _ = PREVIOUS.set(previous);
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigbus as Handler as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
    }
}

extern "C" fn on_sigbus(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // BUS_ADRERR: an access to a page with no file behind it (a SIGBUS sent by kill() has no address to look up).
    let (code, address) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    let in_a_mapping = |slot: &'static Slot| {
        let (start, end) = (slot.start.load(Ordering::Acquire), slot.end.load(Ordering::Acquire));
        (start != 0 && start <= address && address < end).then_some((slot, start, end))
    };
    let hit = if code == libc::BUS_ADRERR { TABLE.iter().find_map(in_a_mapping) } else { None };
    if let Some((slot, start, end)) = hit {
        let replaced = unsafe {
            libc::mmap(start as *mut libc::c_void, end - start, libc::PROT_READ | libc::PROT_WRITE,
                       libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED, -1, 0)
        };
        if replaced != libc::MAP_FAILED {
            slot.cut.store(true, Ordering::Release);
            return;
        }
    }
    pass_on(signal, info, context);
}

/// To the handler there was before; with none, back to the default action, which the access ends the process
/// with when it runs again.
fn pass_on(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    match PREVIOUS.get() {
        Some(previous) if previous.sa_sigaction != libc::SIG_DFL && previous.sa_sigaction != libc::SIG_IGN => unsafe {
            if previous.sa_flags & libc::SA_SIGINFO != 0 {
                let handler: Handler = std::mem::transmute(previous.sa_sigaction);
                handler(signal, info, context);
            } else {
                let handler: extern "C" fn(libc::c_int) = std::mem::transmute(previous.sa_sigaction);
                handler(signal);
            }
        },
        _ => unsafe {
            let mut default: libc::sigaction = std::mem::zeroed();
            default.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(signal, &default, std::ptr::null_mut());
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    const IN_CHILD: &str = "FLINK_BRIDGE_SIGBUS_CHILD";

    /// A file of one page, mapped, then cut to nothing.
    fn cut_mapping(path: &std::path::Path) -> MmapMut {
        let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path).unwrap();
        file.set_len(4096).unwrap();
        let map = unsafe { MmapMut::map_mut(&file) }.unwrap();
        file.set_len(0).unwrap();
        map
    }

    fn touch(at: *mut u8) {
        unsafe { std::ptr::write_volatile(at, 1) };
    }

    #[test]
    fn a_mapping_cut_short_is_replaced_and_marked_and_its_slot_freed() {
        let path = std::env::temp_dir().join(format!("flink-bridge-shared-map-{}", std::process::id()));
        let mut guarded = SharedMap::new(cut_mapping(&path)).unwrap();
        assert!(!guarded.cut_short());
        touch(guarded.as_mut_ptr());
        assert!(guarded.cut_short());
        assert_eq!(unsafe { std::ptr::read_volatile(guarded.as_mut_ptr().add(1)) }, 0, "private zeroed pages");
        let slot = guarded.slot as *const Slot;
        drop(guarded);
        assert_eq!(unsafe { &*slot }.start.load(Ordering::Acquire), 0);
        let _ = std::fs::remove_file(path);
    }

    /// A SIGBUS outside every guarded mapping is not swallowed: the process still ends with it. Run in a child, the
    /// test binary itself asked for this test alone, which cuts the file its parent names.
    #[test]
    fn a_sigbus_outside_every_guarded_mapping_still_ends_the_process() {
        if let Some(path) = std::env::var_os(IN_CHILD) {
            // No core file left behind where the tests run.
            unsafe { libc::setrlimit(libc::RLIMIT_CORE, &libc::rlimit { rlim_cur: 0, rlim_max: 0 }) };
            let _guarded = SharedMap::new(MmapMut::map_anon(4096).unwrap()).unwrap();
            touch(cut_mapping(std::path::Path::new(&path)).as_mut_ptr());
            std::process::exit(0);
        }
        let path = std::env::temp_dir().join(format!("flink-bridge-unguarded-{}", std::process::id()));
        let name = "shared_map::tests::a_sigbus_outside_every_guarded_mapping_still_ends_the_process";
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", name, "--nocapture", "--test-threads=1"])
            .env(IN_CHILD, &path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // A handler that swallowed the fault would run the access again without end.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = child.kill();
        let status = child.wait().unwrap();
        let _ = std::fs::remove_file(path);
        assert_eq!(status.signal(), Some(libc::SIGBUS), "{status:?}");
    }
}
