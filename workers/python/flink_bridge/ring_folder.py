"""The ring folder (docs/protocol.md, "The ring folder"): the folder of the bridge's ring files, the control secret
and a spawned worker's socket. It is checked before anything is written there or a secret read from it: in a
world-writable parent such as /dev/shm any local user can create the folder's name first, and would then read the
secret and replace the socket."""
import os
import stat

PRIVATE_MODE = 0o700


def ensure_private(folder):
    """Creates ``folder`` with mode 0700 when it is missing (its parents as needed), then checks it, whoever made it:
    a folder, not a symbolic link, owned by this process's effective user, with mode 0700 exactly. Returns its
    absolute path; an OSError naming the folder, its owner and its mode, and what to do, when it is anything else."""
    folder = os.path.abspath(folder)
    os.makedirs(os.path.dirname(folder), exist_ok=True)
    try:
        os.mkdir(folder, PRIVATE_MODE)
    except FileExistsError:
        pass  # there already, or made by another process this moment: checked below like any other
    info = os.lstat(folder)
    mode = stat.S_IMODE(info.st_mode)
    user = os.geteuid()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != user or mode != PRIVATE_MODE:
        kind = ("a folder" if stat.S_ISDIR(info.st_mode)
                else "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a folder")
        raise OSError(f"ring folder {folder} is {kind} owned by uid {info.st_uid} with mode {mode:04o}; it must be a "
                      f"folder (not a link) owned by this process's user (uid {user}) with mode 0700, or another local "
                      "user could read the control secret or replace the worker's socket. Remove it, or name another "
                      "folder (flink-bridge.shm.directory on the bridge, --ring-dir on the worker)")
    return folder
