package org.flinkbridge.protocol;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.ObjLongConsumer;

/**
 * The launch contract of a spawned worker (docs/protocol.md, "Launch and lifetime of a spawned worker"): the
 * spawner appends {@code --parent-pid} with its own pid, and the worker prints one listening line with its
 * address once it serves.
 */
public final class WorkerLaunch {

    /** The line a worker prints once it serves, followed by its address ({@code unix:PATH} or {@code HOST:PORT}). */
    public static final String LISTENING_PREFIX = "flink-bridge worker listening on ";
    /** The option that tells a spawned worker whose death it must not outlive. */
    public static final String PARENT_PID_OPTION = "--parent-pid";

    private WorkerLaunch() {}

    /** A started worker and the address it printed. */
    public record Started(Process process, String address) {}

    /**
     * Starts {@code command} with {@code --parent-pid} of this process and waits for its listening line; a
     * leading {@code java} means this JVM's own launcher, so a Java worker runs on the same JDK. Every line the
     * worker prints (standard output and error) goes to {@code output} with its pid, from a daemon thread, for as long as it
     * runs. A worker that does not print the line within {@code timeoutMillis}, or exits first, is stopped and
     * refused naming the command ({@link WorkerLostException}: a worker killed while it starts is one).
     */
    public static Started start(List<String> command, long timeoutMillis, ObjLongConsumer<String> output)
            throws IOException {
        List<String> spawned = onThisJdk(command);
        spawned.addAll(List.of(PARENT_PID_OPTION, Long.toString(ProcessHandle.current().pid())));
        Process process;
        try {
            process = new ProcessBuilder(spawned).redirectErrorStream(true).start();
        } catch (IOException e) {
            throw new IOException("cannot start the worker with " + String.join(" ", command) + ": "
                    + e.getMessage(), e);
        }
        CompletableFuture<String> listening = new CompletableFuture<>();
        Thread pump = new Thread(() -> pumpOutput(process, listening, output), "worker-" + process.pid() + "-output");
        pump.setDaemon(true);
        pump.start();
        try {
            return new Started(process, listening.get(timeoutMillis, TimeUnit.MILLISECONDS));
        } catch (TimeoutException | ExecutionException e) {
            process.destroyForcibly();
            String why = process.isAlive() || !process.onExit().isDone() ? "did not report its address within "
                    + timeoutMillis + " ms" : "exited with code " + process.onExit().join().exitValue();
            throw new WorkerLostException("the worker started with '" + String.join(" ", command) + "' " + why
                    + " (its output is in this process's log)", e);
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while starting the worker", e);
        }
    }

    /** {@code command} with a leading {@code java} replaced by this JVM's own launcher. */
    public static List<String> onThisJdk(List<String> command) {
        List<String> resolved = new ArrayList<>(command);
        if (!resolved.isEmpty() && resolved.getFirst().equals("java")) {
            resolved.set(0, Path.of(System.getProperty("java.home"), "bin", "java").toString());
        }
        return resolved;
    }

    /** Forwards the worker's output, picking out the line that gives its address. */
    private static void pumpOutput(Process process, CompletableFuture<String> listening,
                                   ObjLongConsumer<String> output) {
        try (BufferedReader lines = new BufferedReader(
                new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = lines.readLine()) != null) {
                if (!listening.isDone() && line.startsWith(LISTENING_PREFIX)) {
                    listening.complete(line.substring(LISTENING_PREFIX.length()).trim());
                }
                output.accept(line, process.pid());
            }
        } catch (IOException e) {
            // The worker's output closed with it; its exit is reported where it matters.
        }
        listening.completeExceptionally(new IOException("worker output ended before it reported its address"));
    }

    /** Stops a worker: SIGTERM, then SIGKILL after 5 s. */
    public static void stop(Process process) {
        process.destroy();
        try {
            if (!process.waitFor(5, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }
}
