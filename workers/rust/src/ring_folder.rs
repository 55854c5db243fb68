//! The ring folder (docs/protocol.md, "The ring folder"): the folder of the bridge's ring files, the control secret
//! and a spawned worker's socket. It is checked before anything is written there or a secret read from it: in a
//! world-writable parent such as /dev/shm any local user can create the folder's name first, and would then read
//! the secret and replace the socket.

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The only mode a ring folder may have: rwx for its owner, nothing for anyone else.
const PRIVATE_MODE: u32 = 0o700;

/// Creates `folder` with mode 0700 when it is missing (its parents as needed), then checks it, whoever made it: a
/// folder, not a symbolic link, owned by this process's effective user, with mode 0700 exactly. Its absolute path;
/// an error naming the folder, its owner and its mode, and what to do, when it is anything else.
pub fn ensure_private(folder: &Path) -> Result<PathBuf, String> {
    let folder = crate::ring::absolute(folder);
    if let Some(parent) = folder.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}, the ring folder's parent: {e}", parent.display()))?;
    }
    match std::fs::DirBuilder::new().mode(PRIVATE_MODE).create(&folder) {
        // There already, or made by another process this moment: checked below like any other.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        other => other.map_err(|e| format!("cannot create the ring folder {}: {e}", folder.display()))?,
    }
    let info = std::fs::symlink_metadata(&folder).map_err(|e| format!("cannot check the ring folder {}: {e}", folder.display()))?;
    let mode = info.mode() & 0o7777;
    let user = unsafe { libc::geteuid() };
    if !info.file_type().is_dir() || info.uid() != user || mode != PRIVATE_MODE {
        let kind = if info.file_type().is_dir() { "a folder" } else if info.file_type().is_symlink() { "a symbolic link" } else { "not a folder" };
        return Err(format!(
            "ring folder {} is {kind} owned by uid {} with mode {mode:04o}; it must be a folder (not a link) owned by this process's user \
             (uid {user}) with mode 0700, or another local user could read the control secret or replace the worker's socket. Remove it, \
             or name another folder (flink-bridge.shm.directory on the bridge, --ring-dir on the worker)",
            folder.display(),
            info.uid()
        ));
    }
    Ok(folder)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::tests::Folder;
    use std::os::unix::fs::PermissionsExt;

    /// The uid of nobody: a user other than the one running the tests (root).
    const OTHER_UID: u32 = 65534;

    fn refusal(folder: &Path) -> String {
        ensure_private(folder).expect_err("the folder is refused")
    }

    /// A folder `rings` in `dir` that everyone may write (mode 0777).
    fn writable_by_all(dir: &Folder) -> PathBuf {
        let folder = dir.0.join("rings");
        std::fs::create_dir(&folder).unwrap();
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o777)).unwrap();
        folder
    }

    #[test]
    fn a_missing_folder_is_made_private_with_its_parents() {
        let dir = Folder::new();
        let folder = dir.0.join("shared/rings");
        ensure_private(&folder).unwrap();
        ensure_private(&folder).unwrap();
        assert_eq!(std::fs::symlink_metadata(&folder).unwrap().mode() & 0o7777, 0o700);
    }

    #[test]
    fn a_folder_of_another_user_is_refused_naming_its_owner_and_mode() {
        if unsafe { libc::geteuid() } != 0 {
            return; // giving a folder to another user needs root
        }
        let dir = Folder::new();
        let folder = dir.0.join("rings");
        std::fs::DirBuilder::new().mode(0o700).create(&folder).unwrap();
        std::os::unix::fs::chown(&folder, Some(OTHER_UID), None).unwrap();
        let refusal = refusal(&folder);
        assert!(refusal.starts_with(&format!(
            "ring folder {} is a folder owned by uid {OTHER_UID} with mode 0700; it must be a folder (not a link) owned by this process's user (uid 0)",
            folder.display()
        )), "{refusal}");
        assert!(refusal.contains("Remove it, or name another folder"), "{refusal}");
    }

    #[test]
    fn a_folder_others_can_write_is_refused() {
        let dir = Folder::new();
        let folder = writable_by_all(&dir);
        let refusal = refusal(&folder);
        assert!(refusal.starts_with(&format!("ring folder {} is a folder owned by uid ", folder.display())), "{refusal}");
        assert!(refusal.contains(" with mode 0777; "), "{refusal}");
    }

    #[test]
    fn a_link_to_a_private_folder_is_refused() {
        let dir = Folder::new();
        let target = ensure_private(&dir.0.join("private")).unwrap();
        let link = dir.0.join("rings");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let refusal = refusal(&link);
        assert!(refusal.starts_with(&format!("ring folder {} is a symbolic link owned by uid ", link.display())), "{refusal}");
    }

    #[test]
    fn the_secret_is_not_written_into_a_refused_folder() {
        let dir = Folder::new();
        let folder = writable_by_all(&dir);
        let refusal = crate::secret::from_file(&folder).expect_err("the folder is refused");
        assert!(refusal.starts_with(&format!("ring folder {}", folder.display())), "{refusal}");
        assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 0);
    }
}
