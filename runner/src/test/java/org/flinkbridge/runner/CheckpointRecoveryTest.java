package org.flinkbridge.runner;

import org.flinkbridge.bridge.JobCounters;
import org.flinkbridge.transport.shm.RingFiles;
import org.flinkbridge.transport.shm.RingLayout;
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
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Worker state lives in Flink's checkpoints: a job counting records per key in the worker, whose worker dies,
 * hangs or answers garbage mid-run, restarts from the last checkpoint with the worker's counts restored, and
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

    /** What the faults strike in a Python worker: a session's process. */
    private static final String PYTHON_SESSION = "flink_bridge.session_process";

    @ParameterizedTest
    @CsvSource({"shm, DIES, java", "grpc, DIES, java", "shm, HANGS, java", "shm, ANSWERS_GARBAGE, java",
            "shm, DIES, python", "grpc, DIES, python", "shm, HANGS, python", "shm, ANSWERS_GARBAGE, python"})
    void aFailingWorkerIsRestoredFromTheCheckpointWithNoLossOrDuplicate(String transport, Fault fault, String worker,
                                                                       @TempDir Path dir) throws Exception {
        Path pipeline = TestPipelines.write(dir, "counts", """
                name: counts
                sources:
                  events: {type: generator, count: %d, rate: 6000, keys: 20, seed: 7}
                steps:
                  - {step_name: count_per_key, type: running_count, config: {key_json_field: key}}
                sinks:
                  files: {type: file, path: unused}
                bridge:
                  transport: %s
                  parallelism: 2
                  key: {json_field: key}
                  checkpoint_interval_ms: 300
                  worker_timeout_ms: 3000
                  worker: %s
                """.formatted(EVENTS, transport, worker));
        Path out = dir.resolve("out");
        CompletableFuture<String> run = TestPipelines.runInBackground(pipeline.toString(), "--output", out.toString(),
                "-Drestart-strategy.type=fixed-delay", "-Drestart-strategy.fixed-delay.attempts=3",
                "-Drestart-strategy.fixed-delay.delay=200ms");
        ProcessHandle target = worker.equals("python") ? TestPeers.awaitSpawned(PYTHON_SESSION, EVENTS / 3, run)
                : TestPeers.awaitSpawnedWorker(EVENTS / 3, run);
        switch (fault) {
            case DIES -> signal(target, "KILL");
            case HANGS -> signal(target, "STOP");
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
            signal(target, "KILL");
        }

        Map<String, List<Long>> counts = TestPipelines.runningCountsOnceEach(out);
        long total = counts.values().stream().mapToLong(List::size).sum();
        assertEquals(EVENTS, total, "records in the output");
        assertTrue(JobCounters.get(JobCounters.Count.SENT) > EVENTS,
                "no records were sent again from a checkpoint: the fault did not make the job restart");
        assertEquals(20, counts.size());
    }

    private static void signal(ProcessHandle process, String signal) throws Exception {
        new ProcessBuilder("kill", "-" + signal, Long.toString(process.pid())).start().waitFor();
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
