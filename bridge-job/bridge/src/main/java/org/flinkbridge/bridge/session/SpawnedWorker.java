package org.flinkbridge.bridge.session;

import org.flinkbridge.protocol.WorkerLaunch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A worker process started by this JVM (a TaskManager, or the local runner's MiniCluster) and shared by
 * every session of the same command in it, as the design has one worker per TaskManager. It is stopped when
 * its last session releases it. For recovery in place a standby process is kept behind it, so that a lost
 * worker is replaced without waiting for a new process to start.
 */
public final class SpawnedWorker {

    private static final Logger LOG = LoggerFactory.getLogger(SpawnedWorker.class);
    /** How long after its worker a standby starts: not while the job itself starts. */
    private static final long STANDBY_DELAY_MILLIS = 3_000;
    private static final Map<List<String>, SpawnedWorker> RUNNING = new HashMap<>();
    private static final Map<List<String>, Standby> STANDBYS = new HashMap<>();

    private final List<String> command;
    private final Process process;
    private final String address;
    private int users;
    /** Stopped as asked (an upgrade): sessions no longer open on it. */
    private boolean retired;

    private SpawnedWorker(List<String> command, Process process, String address) {
        this.command = command;
        this.process = process;
        this.address = address;
    }

    /**
     * The running worker for {@code command}; if there is none (or the last one died), its standby when that is
     * up, else a new process. With {@code standby}, a standby process is kept behind it from then on.
     */
    public static synchronized SpawnedWorker acquire(List<String> command, long startTimeoutMillis, boolean standby)
            throws IOException {
        SpawnedWorker worker = RUNNING.get(command);
        if (worker == null || worker.retired || !worker.process.isAlive()) {
            Standby behind = STANDBYS.remove(command);
            worker = behind == null ? null : behind.take(startTimeoutMillis);
            if (worker != null) {
                LOG.info("worker process {} takes over from its standby at {}", worker.pid(), worker.address);
            } else {
                worker = start(command, startTimeoutMillis);
            }
            RUNNING.put(command, worker);
        }
        if (standby && !STANDBYS.containsKey(command)) {
            STANDBYS.put(command, new Standby(command, startTimeoutMillis));
        }
        worker.users++;
        return worker;
    }

    public void release() {
        release(false);
    }

    /**
     * Releases a worker its session lost and is about to replace. Its process is killed when it still runs: a
     * worker lost while its process lives hangs or broke its sessions, and every session of this TaskManager
     * moves to the next one. Its standby stays, to take over.
     */
    public void releaseLost() {
        killIfRunning();
        release(true);
    }

    /**
     * Releases a worker that stopped as asked, for an upgrade: it is left to exit, and the next session of its
     * command starts a new process, of the build installed now. Its standby is dropped: it runs the old build.
     */
    public void releaseStopped() {
        synchronized (SpawnedWorker.class) {
            // Once per worker: its other sessions find it stopped too, after a new one (and standby) took its place.
            if (!retired) {
                retired = true;
                Standby standby = STANDBYS.remove(command);
                if (standby != null) {
                    standby.drop();
                }
            }
        }
        release(false);
    }

    private synchronized void release(boolean keepStandby) {
        synchronized (SpawnedWorker.class) {
            if (--users > 0) {
                return;
            }
            if (RUNNING.get(command) == this) {
                RUNNING.remove(command);
                Standby standby = keepStandby ? null : STANDBYS.remove(command);
                if (standby != null) {
                    standby.drop();
                }
            } else if (!retired) {
                return;
            }
        }
        stop();
    }

    private void killIfRunning() {
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

    /** A worker process started a little after the one it stands behind, to take over from it when it is lost. */
    private static final class Standby {
        private final CompletableFuture<SpawnedWorker> started = new CompletableFuture<>();
        private volatile boolean wanted = true;
        private volatile boolean starting;

        Standby(List<String> command, long startTimeoutMillis) {
            Thread starter = new Thread(() -> {
                try {
                    Thread.sleep(STANDBY_DELAY_MILLIS);
                    if (wanted) {
                        starting = true;
                        started.complete(start(command, startTimeoutMillis));
                    } else {
                        started.cancel(false);
                    }
                } catch (IOException | InterruptedException e) {
                    LOG.warn("a standby worker did not start: {}", e.getMessage());
                    started.completeExceptionally(e);
                }
            }, "flink-bridge-standby-worker");
            starter.setDaemon(true);
            starter.start();
        }

        /**
         * The standby, once up (waiting for it when its process is starting already), or null when it is not
         * starting yet, failed or is gone: it is dropped then, and a new process is started instead.
         */
        SpawnedWorker take(long timeoutMillis) {
            if (starting) {
                try {
                    SpawnedWorker worker = started.get(timeoutMillis, TimeUnit.MILLISECONDS);
                    if (worker.process.isAlive()) {
                        return worker;
                    }
                } catch (ExecutionException | TimeoutException | CancellationException e) {
                    LOG.warn("the standby worker is not there to take over: {}", e.getMessage());
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            drop();
            return null;
        }

        /** Stops the standby, now or once it has started. */
        void drop() {
            wanted = false;
            started.thenAccept(SpawnedWorker::stop);
        }
    }

    private void stop() {
        WorkerLaunch.stop(process);
        LOG.info("stopped worker process {}", process.pid());
    }
}
