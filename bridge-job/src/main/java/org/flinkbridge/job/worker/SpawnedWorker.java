package org.flinkbridge.job.worker;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A worker process started by this JVM (a TaskManager, or the local runner's MiniCluster) and shared by
 * every session of the same command in it, as the design has one worker per TaskManager. It is stopped when
 * its last session releases it.
 */
public final class SpawnedWorker {

    private static final Logger LOG = LoggerFactory.getLogger(SpawnedWorker.class);
    /** The line a worker prints once it serves; see the worker's {@code WorkerMain}. */
    static final String LISTENING_PREFIX = "flink-bridge worker listening on ";
    /** The option that tells a spawned worker whose death it must not outlive; see the worker's {@code ParentWatch}. */
    public static final String PARENT_PID_OPTION = "--parent-pid";
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
        Process process;
        try {
            process = new ProcessBuilder(spawnCommand(command)).redirectErrorStream(true).start();
        } catch (IOException e) {
            throw new IOException("cannot start the worker with " + String.join(" ", command) + ": "
                    + e.getMessage(), e);
        }
        CompletableFuture<String> listening = new CompletableFuture<>();
        Thread pump = new Thread(() -> pumpOutput(process, listening), "worker-" + process.pid() + "-output");
        pump.setDaemon(true);
        pump.start();
        try {
            String address = listening.get(startTimeoutMillis, TimeUnit.MILLISECONDS);
            LOG.info("started worker process {} at {}: {}", process.pid(), address, String.join(" ", command));
            return new SpawnedWorker(command, process, address);
        } catch (TimeoutException | ExecutionException e) {
            process.destroyForcibly();
            String why = process.isAlive() || !process.onExit().isDone() ? "did not report its port within "
                    + startTimeoutMillis + " ms" : "exited with code " + process.onExit().join().exitValue();
            throw new IOException("the worker started with '" + String.join(" ", command) + "' " + why
                    + " (its output is in this process's log)", e);
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while starting the worker", e);
        }
    }

    /**
     * {@code command} as this JVM runs it: a leading {@code java} means this JVM's own launcher, so the worker
     * runs on the same JDK, and {@code --parent-pid} gives the worker this process's pid, so it ends when this
     * process dies, whenever that happens (the worker protocol's launch contract).
     */
    private static List<String> spawnCommand(List<String> command) {
        List<String> spawned = new java.util.ArrayList<>(command);
        if (!spawned.isEmpty() && spawned.getFirst().equals("java")) {
            spawned.set(0, java.nio.file.Path.of(System.getProperty("java.home"), "bin", "java").toString());
        }
        spawned.addAll(List.of(PARENT_PID_OPTION, Long.toString(ProcessHandle.current().pid())));
        return spawned;
    }

    /** Forwards the worker's output to our log, picking out the line that gives its address. */
    private static void pumpOutput(Process process, CompletableFuture<String> listening) {
        try (BufferedReader lines = new BufferedReader(
                new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = lines.readLine()) != null) {
                if (!listening.isDone() && line.startsWith(LISTENING_PREFIX)) {
                    listening.complete(line.substring(LISTENING_PREFIX.length()).trim());
                }
                LOG.info("[worker {}] {}", process.pid(), line);
            }
        } catch (IOException e) {
            LOG.debug("worker {} output closed", process.pid(), e);
        }
        listening.completeExceptionally(new IOException("worker output ended before it reported its port"));
    }

    private void stop() {
        process.destroy();
        try {
            if (!process.waitFor(5, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
        LOG.info("stopped worker process {}", process.pid());
    }
}
