package org.flinkbridge.bridge.session;

import org.flinkbridge.protocol.WorkerLaunch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A worker process started by this JVM (a TaskManager, or the local runner's MiniCluster) and shared by
 * every session of the same command in it, as the design has one worker per TaskManager. It is stopped when
 * its last session releases it.
 */
public final class SpawnedWorker {

    private static final Logger LOG = LoggerFactory.getLogger(SpawnedWorker.class);
    private static final Map<List<String>, SpawnedWorker> RUNNING = new HashMap<>();

    private final List<String> command;
    private final Process process;
    private final String address;
    private int users;

    private SpawnedWorker(List<String> command, Process process, String address) {
        this.command = command;
        this.process = process;
        this.address = address;
    }

    /** The running worker for {@code command}, started if there is none (or the last one died). */
    public static synchronized SpawnedWorker acquire(List<String> command, long startTimeoutMillis)
            throws IOException {
        SpawnedWorker worker = RUNNING.get(command);
        if (worker == null || !worker.process.isAlive()) {
            worker = start(command, startTimeoutMillis);
            RUNNING.put(command, worker);
        }
        worker.users++;
        return worker;
    }

    public synchronized void release() {
        synchronized (SpawnedWorker.class) {
            if (--users > 0 || RUNNING.get(command) != this) {
                return;
            }
            RUNNING.remove(command);
        }
        stop();
    }

    /**
     * Kills the process when it still runs: a worker lost while its process lives hangs or broke its sessions,
     * and the next {@link #acquire} starts a new one for every session of this TaskManager.
     */
    public void killIfRunning() {
        if (process.isAlive()) {
            LOG.warn("killing worker process {}, which stopped serving its sessions", process.pid());
            process.destroyForcibly();
            try {
                process.waitFor();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    public String address() {
        return address;
    }

    /** Why the worker is gone, or null while it runs. */
    public String exitDescription() {
        return process.isAlive() ? null
                : "worker process " + process.pid() + " exited with code " + process.exitValue();
    }

    public long pid() {
        return process.pid();
    }

    private static SpawnedWorker start(List<String> command, long startTimeoutMillis) throws IOException {
        WorkerLaunch.Started started = WorkerLaunch.start(command, startTimeoutMillis,
                (line, pid) -> LOG.info("[worker {}] {}", pid, line));
        LOG.info("started worker process {} at {}: {}", started.process().pid(), started.address(),
                String.join(" ", command));
        return new SpawnedWorker(command, started.process(), started.address());
    }

    private void stop() {
        WorkerLaunch.stop(process);
        LOG.info("stopped worker process {}", process.pid());
    }
}
