package org.flinkbridge.launcher;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Two launcher commands at once in one checkout (a worker in one terminal, a run in another) must not build
 * under each other: the second waits for the first's build lock, and says so. Runs the launcher's own
 * {@code with_build_lock} from a copy of its scripts, so the lock is the copy's, not this build's.
 */
class LauncherLockTest {

    private static final Path HOME = Path.of(System.getProperty("user.dir"));

    @Test
    void aSecondBuildWaitsForTheFirstAndSaysSo(@TempDir Path checkout) throws Exception {
        Files.createDirectories(checkout.resolve("tools/launcher"));
        Files.copy(HOME.resolve("tools/launcher/env.sh"), checkout.resolve("tools/launcher/env.sh"));
        Path order = checkout.resolve("order");

        Process first = locked(checkout, "echo holding; while [ ! -e release ]; do sleep 0.05; done; echo first >> order");
        try (BufferedReader firstOutput = new BufferedReader(
                new InputStreamReader(first.getInputStream(), StandardCharsets.UTF_8))) {
            assertEquals("holding", firstOutput.readLine());
            Process second = locked(checkout, "echo second >> order");
            String waiting = new BufferedReader(new InputStreamReader(second.getInputStream(), StandardCharsets.UTF_8))
                    .readLine();
            assertTrue(waiting != null && waiting.contains("another launcher command is building this checkout; "
                    + "waiting for it"), "the second command did not say it waits: " + waiting);
            assertFalse(Files.exists(order), "the second command ran while the first held the lock");

            Files.createFile(checkout.resolve("release"));

            assertTrue(first.waitFor(30, TimeUnit.SECONDS) && second.waitFor(30, TimeUnit.SECONDS));
            assertEquals(0, first.exitValue());
            assertEquals(0, second.exitValue());
            assertEquals(List.of("first", "second"), Files.readAllLines(order));
        } finally {
            first.destroyForcibly();
        }
    }

    /** Runs {@code script} under the launcher's build lock, in {@code checkout}, as a command of its own. */
    private static Process locked(Path checkout, String script) throws Exception {
        ProcessBuilder builder = new ProcessBuilder("bash", "-c",
                "source tools/launcher/env.sh && with_build_lock bash -c '" + script + "'")
                .directory(checkout.toFile()).redirectErrorStream(true);
        // This suite runs under ./flink-bridge test, which holds its own checkout's lock and says so.
        builder.environment().remove("FLINK_BRIDGE_BUILD_LOCK_HELD");
        return builder.start();
    }
}
