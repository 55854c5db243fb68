package org.flinkbridge.bench;

import java.util.List;

/**
 * Kills the worker processes a benchmark's job runs on, as a crash would: SIGKILL
 * ({@link ProcessHandle#destroyForcibly} on Linux) to every process descended from this JVM, as {@link WorkerMemory} finds them: the embedded TaskManager
 * spawns the workers (one per worker command, shared by the job's sessions), and the Python and Rust workers' session
 * processes descend from those. Nothing else in this JVM spawns a process.
 */
final class WorkerKill {

    private WorkerKill() {}

    /** Sends SIGKILL to every descendant of this JVM; gives their pids (none where there was none). */
    static List<Long> killAll() {
        List<ProcessHandle> workers = ProcessHandle.current().descendants().toList();
        for (ProcessHandle worker : workers) {
            worker.destroyForcibly();
        }
        return workers.stream().map(ProcessHandle::pid).toList();
    }
}
