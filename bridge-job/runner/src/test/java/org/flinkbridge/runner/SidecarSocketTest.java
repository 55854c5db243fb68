package org.flinkbridge.runner;

import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A sidecar worker listens on the Unix socket it is told to ({@code --unix-socket-path}), the fixed address by
 * which every TaskManager's jobs find their own sidecar through the folder the two containers share: a job runs
 * through it over shm; a second worker on the same path ends naming it; a killed worker's socket file is taken
 * over by the next.
 */
class SidecarSocketTest {

    @ParameterizedTest
    @ValueSource(strings = {"java", "python", "rust"})
    void aSidecarListensOnTheSocketItIsToldToAndOnlyOneAtATime(String language, @TempDir Path dir) throws Exception {
        Path socket = dir.resolve("worker.sock");
        Path pipeline = TestPipelines.write(dir, "p", """
                name: through-a-sidecar-socket
                sources: {events: {type: generator, count: 3000, keys: 10, seed: 1}}
                steps:
                  - {step_name: add_processed, type: append_field}
                sinks: {out: {type: file, path: unused}}
                bridge: {transport: shm}
                """);
        Process first = start(language, socket);
        try {
            assertEquals("unix:" + socket, TestPeers.workerAddress(first));

            String summary = LocalRunner.run(new String[] {pipeline.toString(), "--worker-address", "unix:" + socket,
                    "--output", dir.resolve("out").toString()});
            assertTrue(summary.contains("read=3000 sent=3000 received=3000 written=3000"), summary);

            Process second = start(language, socket);
            assertTrue(second.waitFor(60, TimeUnit.SECONDS), "a second worker on a taken socket did not end");
            assertNotEquals(0, second.exitValue());
            String error = new String(second.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(error.contains(socket.toString()) && error.contains("another process accepts on"), error);
        } finally {
            first.destroyForcibly().waitFor();
        }
        assertTrue(Files.exists(socket), "a killed worker leaves its socket file");
        Process next = start(language, socket);
        try {
            assertEquals("unix:" + socket, TestPeers.workerAddress(next));
        } finally {
            next.destroyForcibly().waitFor();
        }
    }

    private static Process start(String language, Path socket) throws IOException {
        List<String> command = new ArrayList<>(switch (language) {
            case "java" -> List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                    "--enable-native-access=ALL-UNNAMED", "-jar", TestPipelines.workerJar());
            case "python" -> List.of(System.getProperty("flink-bridge.worker.python.executable"),
                    System.getProperty("flink-bridge.worker.python.runtime"));
            default -> List.of(TestPipelines.RUST_WORKER);
        });
        command.addAll(List.of("--unix-socket-path", socket.toString()));
        return new ProcessBuilder(command).start();
    }
}
