package org.flinkbridge.runner;

import org.flinkbridge.bridge.JobCounters;
import org.flinkbridge.transport.shm.RingFiles;
import org.flinkbridge.transport.shm.RingLayout;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Worker state lives in Flink's checkpoints: a job counting records per key in the worker, whose worker dies,
 * hangs or answers garbage mid-run, restarts from the last checkpoint with the worker's counts restored (failover),
 * or goes on with a new worker given the last barrier's state and the inputs since (recovery in place), and
 * the exactly-once file sink holds every key's counts 1..n once each: nothing lost, nothing repeated. With
 * the Python worker the fault strikes one session's process (the one serving the ring or stream).
 */
class CheckpointRecoveryTest {

    private static final int EVENTS = 30_000;

    /** What goes wrong with the worker mid-run. */
    enum Fault {
        /** SIGKILL: the process is gone. */
        DIES,
        /** SIGSTOP: the process is there but answers nothing. */
        HANGS,
        /** Its answer ring is overwritten with bytes that are no frames. */
        ANSWERS_GARBAGE
    }

    @ParameterizedTest
    @CsvSource({"shm, DIES, java", "grpc, DIES, python", "shm, ANSWERS_GARBAGE, python"})
    void withFailoverAFailingWorkerIsRestoredFromTheCheckpointWithNoLossOrDuplicate(
            String transport, Fault fault, String worker, @TempDir Path dir) throws Exception {
        restoredFromTheCheckpoint(transport, fault, worker, dir);
    }

    /** A hung worker, found by its input timeout, in the long run (./flink-bridge test long). */
    @Tag("long")
    @Test
    void withFailoverAHungWorkerIsRestoredFromTheCheckpointWithNoLossOrDuplicate(@TempDir Path dir)
            throws Exception {
        restoredFromTheCheckpoint("shm", Fault.HANGS, "java", dir);
    }

    private static void restoredFromTheCheckpoint(String transport, Fault fault, String worker, Path dir)
            throws Exception {
        RunningJob run = runWithFault(transport, fault, worker, "failover", dir).run();

        assertTrue(run.restarts() >= 1, "the fault did not make the job restart from a checkpoint");
        assertEquals(0, run.count(JobCounters.Count.WORKER_RECOVERIES));
    }

    /**
     * Recovered in place, a dead or hung worker costs the job no restart: no record is sent twice from the
     * source, and still none is lost or repeated in the output. Garbage is no loss of the worker: it fails the
     * task, and the job restores from its checkpoint as with failover.
     */
    @ParameterizedTest
    @CsvSource({"shm, DIES, java", "grpc, HANGS, java", "grpc, DIES, python", "shm, HANGS, python",
            "shm, ANSWERS_GARBAGE, java", "shm, DIES, rust", "grpc, HANGS, rust"})
    void inPlaceALostWorkerIsReplacedWithoutRestartingTheJob(String transport, Fault fault, String worker,
                                                            @TempDir Path dir) throws Exception {
        Faulted faulted = runWithFault(transport, fault, worker, "in_place", dir);

        if (fault == Fault.ANSWERS_GARBAGE) {
            assertTrue(faulted.run().restarts() >= 1, "garbage did not make the job restart");
        } else {
            faulted.run().assertSentOnceWithoutRestart(EVENTS);
            assertTrue(faulted.run().count(JobCounters.Count.WORKER_RECOVERIES) >= 1, "no recovery in place was counted"
                    + " after the fault struck " + faulted.target().pid() + " ("
                    + faulted.target().info().commandLine().orElse("?") + ")");
        }
    }

    /** A run that a fault struck, and the process it struck. */
    private record Faulted(RunningJob run, ProcessHandle target) {}

    /** Runs the per-key count with the fault striking mid-run; checks every key's counts 1..n once each. */
    private static Faulted runWithFault(String transport, Fault fault, String worker, String recovery, Path dir)
            throws Exception {
        Path pipeline = TestPipelines.perKeyCounts(dir, EVENTS, 6000, "transport: " + transport,
                "worker_timeout_ms: 3000", "worker: " + worker, "worker_recovery: " + recovery);
        Path out = dir.resolve("out");
        RunningJob run = TestPipelines.runInBackground(pipeline.toString(), "--output", out.toString(),
                "-Drestart-strategy.type=fixed-delay", "-Drestart-strategy.fixed-delay.attempts=3",
                "-Drestart-strategy.fixed-delay.delay=200ms");
        String marker = TestPeers.faultTarget(worker);
        ProcessHandle target = TestPeers.awaitSpawned(marker, EVENTS / 3, run);
        switch (fault) {
            case DIES -> TestPeers.signal(target, "KILL");
            case HANGS -> TestPeers.signal(target, "STOP");
            case ANSWERS_GARBAGE -> {
                // Answers in flight are what the bridge reads next; keep scribbling until a session failed on
                // them (its ring file is gone) or the input is nearly over.
                List<Path> struck = rings();
                long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(3000);
                while (System.nanoTime() < until && !run.isDone() && struck.stream().allMatch(Files::exists)) {
                    scribbleOverAnswerRings();
                    Thread.sleep(10);
                }
            }
        }
        try {
            run.get(3, TimeUnit.MINUTES);
        } finally {
            TestPeers.signal(target, "KILL");
        }

        Map<String, List<Long>> counts = TestPipelines.runningCountsOnceEach(out);
        long total = counts.values().stream().mapToLong(List::size).sum();
        assertEquals(EVENTS, total, "records in the output");
        assertEquals(20, counts.size());
        return new Faulted(run, target);
    }


    /** Fills the from-worker ring of every open session with 0xFF: lengths and types no frame has. */
    private static void scribbleOverAnswerRings() throws Exception {
        for (Path ring : rings()) {
            try (FileChannel channel = FileChannel.open(ring, StandardOpenOption.READ, StandardOpenOption.WRITE);
                 Arena arena = Arena.ofConfined()) {
                if (channel.size() < RingLayout.HEADER_SIZE) {
                    continue; // a ring another session is creating right now: no answers in it yet
                }
                MemorySegment file = channel.map(FileChannel.MapMode.READ_WRITE, 0, channel.size(), arena);
                int toWorkerCapacity = file.get(ValueLayout.JAVA_INT, RingLayout.TO_WORKER_CAPACITY_OFFSET);
                if (toWorkerCapacity == 0) {
                    continue; // sized, but its header is not written yet
                }
                file.asSlice(RingLayout.HEADER_SIZE + toWorkerCapacity).fill((byte) 0xFF);
            } catch (java.nio.file.NoSuchFileException closed) {
                // the session closed meanwhile: its ring is gone
            }
        }
    }

    /** The ring files of the sessions open now. */
    private static List<Path> rings() throws IOException {
        try (Stream<Path> files = Files.list(RingFiles.defaultDirectory())) {
            return files.filter(file -> file.toString().endsWith(RingFiles.SUFFIX)).toList();
        }
    }
}
