package org.flinkbridge.bridge.session;

import org.flinkbridge.bridge.BridgeOptions;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A spawned worker must not outlive the JVM that spawned it (a TaskManager), however early that JVM dies:
 * before the worker's JVM is up, while it starts, or once it serves.
 */
class SpawnedWorkerTest {

    private static final int SPAWNS = 12;
    /** The kills land from the moment the worker process exists to well after it serves. */
    private static final long KILL_DELAY_STEP_MILLIS = 100;

    @Test
    void aWorkerEndsWhenItsSpawnerIsKilledAtAnyMomentOfItsStart() throws Exception {
        String marker = "-Dflink-bridge.test.spawn-run=" + UUID.randomUUID();
        String workerJar = System.getProperty(BridgeOptions.WORKER_JAR.key());
        assertTrue(workerJar != null && Files.isReadable(Path.of(workerJar)), "the worker jar is not built: " + workerJar);
        int workersSeen = 0;
        for (int spawn = 0; spawn < SPAWNS; spawn++) {
            Process spawner = new ProcessBuilder(javaBin(), "-cp", System.getProperty("java.class.path"),
                    Spawner.class.getName(), "java", marker, "--enable-native-access=ALL-UNNAMED",
                    "-jar", workerJar, "--port", "0")
                    .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            try {
                Optional<ProcessHandle> worker = awaitChild(spawner);
                if (worker.isPresent()) {
                    workersSeen++;
                    Thread.sleep(spawn * KILL_DELAY_STEP_MILLIS);
                }
            } finally {
                spawner.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            }
        }
        assertEquals(SPAWNS, workersSeen, "a spawner did not start its worker within 30 s");
        List<ProcessHandle> left = awaitNoneLeft(marker);
        try {
            assertEquals(List.of(), left.stream().map(p -> p.pid() + " " + p.info().commandLine().orElse("")).toList(),
                    "workers outlived the JVM that spawned them");
        } finally {
            left.forEach(ProcessHandle::destroyForcibly);
        }
    }

    /** The spawner's child process, once it exists (its JVM may not be up yet). */
    private static Optional<ProcessHandle> awaitChild(Process spawner) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (System.nanoTime() < deadline && spawner.isAlive()) {
            Optional<ProcessHandle> child = spawner.toHandle().children().findFirst();
            if (child.isPresent()) {
                return child;
            }
            Thread.sleep(1);
        }
        return Optional.empty();
    }

    /** The processes carrying {@code marker} still running 15 s from now, or none as soon as they are gone. */
    private static List<ProcessHandle> awaitNoneLeft(String marker) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
        List<ProcessHandle> left;
        do {
            left = ProcessHandle.allProcesses()
                    .filter(p -> p.info().commandLine().orElse("").contains(marker)).toList();
            if (left.isEmpty()) {
                return left;
            }
            Thread.sleep(200);
        } while (System.nanoTime() < deadline);
        return left;
    }

    private static String javaBin() {
        return Path.of(System.getProperty("java.home"), "bin", "java").toString();
    }

    /** A stand-in for a TaskManager: spawns the worker given by its arguments as a bridge does, then waits. */
    public static final class Spawner {
        public static void main(String[] args) throws Exception {
            SpawnedWorker.acquire(List.of(args), TimeUnit.SECONDS.toMillis(60), true);
            Thread.sleep(Long.MAX_VALUE);
        }
    }
}
