//! The worker ends before it writes its control secret or its socket into a ring folder someone else made first,
//! with or without the secret in its environment, naming the folder, its owner and its mode.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The uid of nobody: a user other than the one running the tests (root).
const OTHER_UID: u32 = 65534;

#[test]
fn the_worker_refuses_a_ring_folder_of_another_user_and_writes_nothing_there() {
    if unsafe { libc::geteuid() } != 0 {
        return; // giving a folder to another user needs root
    }
    for secret in [None, Some("from-the-environment-0123")] {
        let dir = std::env::temp_dir().join(format!("flink-bridge-ring-folder-worker-{}-{}", std::process::id(), secret.is_some()));
        let folder = dir.join("rings");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o777)).unwrap();
        std::os::unix::fs::chown(&folder, Some(OTHER_UID), None).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_flink-bridge-worker"));
        command.args(["--unix-socket", "--ring-dir"]).arg(&folder).stdout(Stdio::piped()).stderr(Stdio::piped()).env_remove("FLINK_BRIDGE_SECRET");
        if let Some(secret) = secret {
            command.env("FLINK_BRIDGE_SECRET", secret);
        }
        let mut worker = command.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while worker.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = worker.kill();
        let output = worker.wait_with_output().unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        let written: Vec<_> = std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().file_name()).collect();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(output.status.code(), Some(1), "secret in the environment: {}; stdout: {stdout}; stderr: {stderr}", secret.is_some());
        assert!(stderr.contains(&format!("ring folder {} is a folder owned by uid {OTHER_UID} with mode 0777", folder.display())), "{stderr}");
        assert_eq!(stdout, "");
        assert!(written.is_empty(), "the worker wrote {written:?} into a folder it refused");
    }
}
