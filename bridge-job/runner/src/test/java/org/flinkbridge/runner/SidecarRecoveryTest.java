package org.flinkbridge.runner;

import org.flinkbridge.bridge.JobCounters;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Recovery in place with a sidecar worker: the worker the job was given by address is killed mid-run (or stopped
 * with SIGTERM, as a container replaced by a new image is) and a new one starts at the same address a second
 * later, as a container restart does; the bridge waits for it, gives it the last barrier's state and the inputs
 * since, and the job ends with every key's counts 1..n once each and no record sent twice from the source.
 */
class SidecarRecoveryTest {

    private static final int EVENTS = 20_000;

    // Over shm: the new sidecar must also map the ring files the bridge creates for it in the shared directory.
    @ParameterizedTest
    @CsvSource({"shm, KILL", "grpc, TERM"})
    void aSidecarRestartedAtItsAddressIsWaitedForAndTheJobGoesOn(String transport, String signal, @TempDir Path dir)
            throws Exception {
        int port = TestPeers.closedPort();
        Process first = TestPeers.startWorker(port);
        Process second = null;
        try {
            TestPeers.workerAddress(first);
            Path pipeline = TestPipelines.perKeyCounts(dir, EVENTS, 5000, "transport: " + transport,
                    "worker_address: \"127.0.0.1:" + port + "\"", "worker_timeout_ms: 3000",
                    "worker_restart_timeout_ms: 30000");
            Path out = dir.resolve("out");
            RunningJob run = TestPipelines.runInBackground(pipeline.toString(), "--output",
                    out.toString(), "-Drestart-strategy.type=none");
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (run.count(JobCounters.Count.SENT) < EVENTS / 4 && System.nanoTime() < deadline) {
                assertTrue(!run.isDone(), "the job ended before the kill: " + (run.isDone() ? run.get() : ""));
                Thread.sleep(20);
            }
            if (signal.equals("KILL")) {
                first.destroyForcibly();
            } else {
                first.destroy();
            }
            first.waitFor(10, TimeUnit.SECONDS);
            Thread.sleep(1_000);
            second = TestPeers.startWorker(port);
            TestPeers.workerAddress(second);

            run.get(3, TimeUnit.MINUTES);

            Map<String, List<Long>> counts = TestPipelines.runningCountsOnceEach(out);
            assertEquals(EVENTS, counts.values().stream().mapToLong(List::size).sum(), "records in the output");
            run.assertSentOnceWithoutRestart(EVENTS);
            // A sidecar stopped with SIGTERM ends its sessions as stopped: an upgrade, not a loss.
            JobCounters.Count moved = signal.equals("KILL") ? JobCounters.Count.WORKER_RECOVERIES
                    : JobCounters.Count.WORKER_UPGRADES;
            assertTrue(run.count(moved) >= 1, "no " + moved + " was counted");
        } finally {
            first.destroyForcibly();
            if (second != null) {
                second.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            }
        }
    }
}
