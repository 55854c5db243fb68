package org.flinkbridge.bench;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class GcPausesTest {

    /** Run in a child JVM: one collection, logged the way a bench worker logs its own. */
    public static final class CollectOnce {
        public static void main(String[] args) {
            System.gc();
        }
    }

    @Test
    void readsThePausesOfARealGcLog(@TempDir Path dir) throws Exception {
        Path log = dir.resolve("gc.log");
        long before = System.currentTimeMillis();
        Process child = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-XX:+UseSerialGC", GcPauses.workerLogOption(log), "-cp", System.getProperty("java.class.path"),
                CollectOnce.class.getName()).inheritIO().start();
        assertTrue(child.waitFor(60, TimeUnit.SECONDS) && child.exitValue() == 0, "the child JVM failed");
        long after = System.currentTimeMillis();

        List<GcPauses.Pause> pauses = GcPauses.fromLog(log);

        assertFalse(pauses.isEmpty(), "no pause read from the log");
        for (GcPauses.Pause pause : pauses) {
            assertTrue(pause.startMillis() <= pause.endMillis() && pause.startMillis() >= before - 1000
                    && pause.endMillis() <= after + 1000, pause + " is not within the child's run");
        }
    }

    @Test
    void countsTheSlowRecordsNearAPause() {
        Latencies.Run run = new Latencies.Run(4, 1, new long[0], List.of(
                new Latencies.Slow(1_000, 1_001),    // in flight during the pause
                new Latencies.Slow(1_030, 1_031),    // starts within the aftermath
                new Latencies.Slow(1_200, 1_201)),   // long after it
                1_000, 2_000);
        List<GcPauses.Pause> pauses = List.of(new GcPauses.Pause(995, 1_015));

        assertEquals(2.0 / 3, GcPauses.slowShareNear(run.slow(), pauses), 1e-9);
        assertEquals((1_015 + GcPauses.AFTERMATH_MILLIS - 1_000) / 1_000.0, GcPauses.timeShareNear(pauses, run), 1e-9);
    }
}
