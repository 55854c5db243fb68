//! The secret that authenticates every call to the worker (docs/protocol.md, "Authentication"): the
//! environment variable FLINK_BRIDGE_SECRET when set, else the file control.secret in the ring directory the
//! bridge and the worker share (mode 0700), created with mode 0600 by whichever side comes first.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

pub const ENV: &str = "FLINK_BRIDGE_SECRET";
pub const FILE_NAME: &str = "control.secret";
pub const METADATA: &str = "flink-bridge-secret";
const MIN_LENGTH: usize = 16;

/// The secret of the workers whose ring directory is `directory`; an error naming the file's problem.
pub fn for_directory(directory: &Path) -> Result<String, String> {
    if let Ok(value) = std::env::var(ENV) {
        return checked(value.trim(), ENV);
    }
    from_file(directory)
}

/// The secret in `directory`'s control.secret, created (mode 0600) if absent, once `directory` is a private ring
/// folder (created if missing).
pub fn from_file(directory: &Path) -> Result<String, String> {
    crate::ring_folder::ensure_private(directory)?;
    let path = directory.join(FILE_NAME);
    if fs::symlink_metadata(&path).is_err() {
        create(directory, &path)?;
    }
    let info = fs::symlink_metadata(&path).map_err(|e| format!("control secret {}: {e}", path.display()))?;
    if !info.file_type().is_file() {
        return Err(format!("control secret {} is not a regular file", path.display()));
    }
    if info.uid() != unsafe { libc::geteuid() } {
        return Err(format!("control secret {} does not belong to this user", path.display()));
    }
    if info.mode() & 0o7777 != 0o600 {
        return Err(format!("control secret {} has mode {:o}; it must be 0600 so no other user can read it", path.display(), info.mode() & 0o7777));
    }
    let text = fs::read_to_string(&path).map_err(|e| format!("control secret {}: {e}", path.display()))?;
    checked(text.trim(), &path.display().to_string())
}

pub fn random_hex(bytes: usize) -> String {
    let mut random = vec![0u8; bytes];
    fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut random)).expect("reading /dev/urandom");
    random.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a new secret beside `path` and links it into place: a reader never sees it half written, and a
/// secret another process linked first holds.
fn create(directory: &Path, path: &Path) -> Result<(), String> {
    let written = directory.join(format!(".control-{}.secret", random_hex(8)));
    let result = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&written)
        .and_then(|mut file| file.write_all(format!("{}\n", random_hex(32)).as_bytes()))
        .and_then(|_| match fs::hard_link(&written, path) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            other => other,
        });
    let _ = fs::remove_file(&written);
    result.map_err(|e| format!("cannot create the control secret {}: {e}", path.display()))
}

fn checked(value: &str, source: &str) -> Result<String, String> {
    if value.len() < MIN_LENGTH || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("the control secret from {source} must be at least {MIN_LENGTH} printable ASCII characters"));
    }
    Ok(value.to_string())
}
