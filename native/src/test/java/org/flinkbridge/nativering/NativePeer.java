package org.flinkbridge.nativering;

import org.flinkbridge.transport.shm.FrameHandler;
import org.flinkbridge.transport.shm.RingConsumer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * One of this module's C programs, running as the worker side of a ring, its standard error going to
 * {@code stderrFile}; closing it kills it if it still runs.
 */
record NativePeer(String program, Process process, Path stderrFile) implements AutoCloseable {

    /** How long one step may take (a frame to arrive, a program to exit) before a test fails. */
    static final Duration PATIENCE = Duration.ofSeconds(10);
    /** One sleep of a waiting side; it looks at the peer and the clock in between. */
    static final long WAIT_NANOS = TimeUnit.MILLISECONDS.toNanos(50);

    /** Where the module's build (make) puts the programs; tests run with the module as working directory. */
    private static final Path PROGRAMS = Path.of("target", "native");

    /** Starts {@code program} with {@code arguments}; its standard error goes to a file in {@code logDirectory}. */
    static NativePeer start(Path logDirectory, String program, String... arguments) throws IOException {
        Path executable = PROGRAMS.resolve(program).toAbsolutePath();
        assertTrue(Files.isExecutable(executable), executable + " is missing: the module's build (make) makes it");
        List<String> command = new ArrayList<>();
        command.add(executable.toString());
        command.addAll(List.of(arguments));
        Path stderr = Files.createTempFile(logDirectory, program, ".stderr");
        Process process = new ProcessBuilder(command)
                .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectError(stderr.toFile())
                .start();
        return new NativePeer(program, process, stderr);
    }

    long pid() {
        return process.pid();
    }

    boolean isAlive() {
        return process.isAlive();
    }

    /** Waits for the program to end; fails naming it and its standard error when it runs longer. */
    int awaitExit(Duration timeout) throws IOException, InterruptedException {
        if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
            fail(program + " did not exit within " + timeout + "; its stderr: " + stderr());
        }
        return process.exitValue();
    }

    String stderr() throws IOException {
        return Files.readString(stderrFile);
    }

    /** Fails, naming the program's exit status and stderr, unless it is still running. */
    void assertRunning(String during) throws IOException {
        if (!process.isAlive()) {
            fail(program + " exited with status " + process.exitValue() + " during " + during + "; its stderr: "
                    + stderr());
        }
    }

    /**
     * Hands frames from {@code consumer} to {@code handler} until {@code done}. Fails when no frame arrives for
     * {@link #PATIENCE}, or when this program exits first (a wait for its exit says so in {@code done}).
     */
    void receive(RingConsumer consumer, FrameHandler handler, BooleanSupplier done, String during)
            throws IOException {
        long lastFrame = System.nanoTime();
        while (!done.getAsBoolean()) {
            if (consumer.poll(handler, 256) > 0) {
                lastFrame = System.nanoTime();
                continue;
            }
            if (done.getAsBoolean()) {
                return;
            }
            assertRunning(during);
            if (System.nanoTime() - lastFrame > PATIENCE.toNanos()) {
                fail("no frame from " + program + " for " + PATIENCE + " during " + during + "; its stderr: "
                        + stderr());
            }
            consumer.awaitFrames(WAIT_NANOS);
        }
    }

    @Override
    public void close() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(10, TimeUnit.SECONDS);
    }
}
