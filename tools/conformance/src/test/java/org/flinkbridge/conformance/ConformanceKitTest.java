package org.flinkbridge.conformance;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The workers we ship keep every contract point the kit checks: the Java, the Python and the Rust worker all of
 * them over both transports, the C ring library (its echo worker) the data-plane points; and the kit fails a peer that
 * breaks one, and a worker that would outlive its spawner.
 */
class ConformanceKitTest {

    private static final Pattern SUMMARY = Pattern.compile("conformance: (\\d+) passed, (\\d+) failed");

    @TempDir
    Path ringDirectory;

    @Test
    void theJavaWorkerKeepsEveryPoint() {
        String jar = System.getProperty("flink-bridge.worker.jar");
        assertTrue(jar != null && Files.isReadable(Path.of(jar)), "the worker jar is not built: " + jar);
        assertKeepsEveryPoint(66, "--", "java", "--enable-native-access=ALL-UNNAMED",
                "--sun-misc-unsafe-memory-access=allow", "-jar", jar, "--unix-socket", "--ring-dir",
                ringDirectory.toString());
    }

    @Test
    void thePythonWorkerKeepsEveryPoint() {
        assertKeepsEveryPoint(66, "--", System.getProperty("flink-bridge.python.executable", "/usr/bin/python3"),
                "workers/python", "--unix-socket", "--ring-dir", ringDirectory.toString());
    }

    @Test
    void theRustWorkerKeepsEveryPoint() {
        Path binary = Path.of("workers/rust/target/release/flink-bridge-worker");
        assertTrue(Files.isExecutable(binary), "the Rust worker is not built: " + binary);
        assertKeepsEveryPoint(66, "--", binary.toString(), "--unix-socket", "--ring-dir", ringDirectory.toString());
    }

    @Test
    void theCRingLibraryKeepsTheDataPlanePoints() {
        assertKeepsEveryPoint(6, "--data-plane", "--", "native/target/native/fb_echo_worker");
    }

    /** A peer that answers most inputs well but drops every tenth one: the kit must say so and fail. */
    @Test
    void aPeerThatDropsAnInputFails() throws IOException {
        Path peer = Files.writeString(ringDirectory.getParent().resolve(ringDirectory.getFileName() + "-peer.py"), """
                import sys
                sys.path.insert(0, sys.argv[1])
                from flink_bridge.ring import RingFile
                ring = RingFile(sys.argv[2], sys.argv[3])
                inputs, answers = ring.consumer(), ring.producer()
                def answer(frame_type, flags, sequence, buffer, offset, length):
                    if sequence % 10 != 9:
                        while not answers.try_write(5, sequence, b""):
                            answers.await_space(0.01)
                while not ring.bridge_closed():
                    if inputs.poll(answer, 64) == 0:
                        answers.publish()
                        inputs.await_frames(0.05)
                """);
        try {
            Run run = run("--data-plane", "--", System.getProperty("flink-bridge.python.executable",
                    "/usr/bin/python3"), peer.toString(), Path.of("workers/python").toAbsolutePath().toString());

            assertEquals(1, run.status, run.output);
            assertTrue(run.lines().stream().anyMatch(line -> line.startsWith("FAIL records: ")
                    && line.contains("while input #9 was not yet ended")), run.output);
            Matcher summary = SUMMARY.matcher(run.lines().getLast());
            assertTrue(summary.matches() && Integer.parseInt(summary.group(2)) > 0, run.output);
        } finally {
            Files.deleteIfExists(peer);
        }
    }

    /**
     * The Python worker behind a shell that drops the {@code --parent-pid} the kit appends: it serves well but
     * would outlive a dead TaskManager, and the kit must fail exactly the lifetime points that say so. In the long
     * run (./flink-bridge test long): each of those points waits its full time.
     */
    @Tag("long")
    @Test
    void aWorkerThatOutlivesItsSpawnerFails() {
        Run run = run("--transport", "grpc", "--", "/bin/sh", "-c", "exec \"$0\" workers/python --unix-socket"
                + " --ring-dir \"" + ringDirectory + "\"", System.getProperty("flink-bridge.python.executable",
                "/usr/bin/python3"));

        assertEquals(1, run.status, run.output);
        List<String> failed = run.lines().stream().filter(line -> line.startsWith("FAIL")).toList();
        assertEquals(4, failed.size(), run.output);
        assertTrue(failed.stream().allMatch(line -> line.startsWith("FAIL lifetime: the worker")
                && line.contains("ms after its spawner was killed")), run.output);
    }

    private void assertKeepsEveryPoint(int atLeast, String... commandLine) {
        List<String> args = new ArrayList<>(List.of("--ring-dir", ringDirectory.toString()));
        args.addAll(List.of(commandLine));
        Run run = run(args.toArray(String[]::new));
        List<String> failed = run.lines().stream().filter(line -> line.startsWith("FAIL")).toList();
        assertEquals(List.of(), failed, run.output);
        Matcher summary = SUMMARY.matcher(run.lines().getLast());
        assertTrue(summary.matches(), run.output);
        assertTrue(Integer.parseInt(summary.group(1)) >= atLeast, run.output);
        assertEquals(0, run.status, run.output);
    }

    private Run run(String... args) {
        List<String> withDirectory = new ArrayList<>(List.of(args));
        if (!withDirectory.contains("--ring-dir")) {
            withDirectory.addAll(0, List.of("--ring-dir", ringDirectory.toString()));
        }
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        int status = ConformanceKit.run(withDirectory.toArray(String[]::new),
                new PrintStream(bytes, true, StandardCharsets.UTF_8));
        return new Run(status, bytes.toString(StandardCharsets.UTF_8));
    }

    private record Run(int status, String output) {
        List<String> lines() {
            return output.lines().toList();
        }
    }
}
