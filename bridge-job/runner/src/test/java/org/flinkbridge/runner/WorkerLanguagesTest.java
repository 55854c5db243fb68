package org.flinkbridge.runner;

import org.flinkbridge.bridge.BridgeOptions;
import org.flinkbridge.bridge.JobCounters;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every worker we ship serves the same jobs: the Python and the Rust worker give the Java worker's output for the
 * bundled example over both session transports; the Rust worker refuses the prototype's service, which it does not
 * serve, naming what it does; and it hosts Python segments, their state in Flink's checkpoints. Its protocol points are in the conformance kit's test, its recovery from faults in
 * {@link CheckpointRecoveryTest}.
 */
class WorkerLanguagesTest {

    private static final int PYTHON_EVENTS = 20_000;

    @Test
    void everyWorkerGivesTheJavaWorkersOutputOfTheBundledExampleOverShmAndTheStream(@TempDir Path dir)
            throws Exception {
        List<String> javaOutput = TestPipelines.runSorted(dir.resolve("java"), "--worker=java");
        assertEquals(1046, javaOutput.size());

        for (String worker : List.of("python", "rust")) {
            for (String transport : List.of("shm", "grpc")) {
                List<String> output = TestPipelines.runSorted(dir.resolve(worker + "-" + transport),
                        "--worker=" + worker, "--transport=" + transport);
                assertEquals(javaOutput, output, worker + " over " + transport);
            }
        }
    }

    /** The steps the bundled example leaves out: filter and count windows give the Java worker's output. */
    @Test
    void theFilterAndCountStepsGiveTheJavaWorkersOutputOnTheRustWorker(@TempDir Path dir) throws Exception {
        Path pipeline = TestPipelines.write(dir, "built-ins", """
                name: built-ins
                sources: {events: {type: generator, count: 20000, keys: 20, seed: 5}}
                steps:
                  - {step_name: drop_seven, type: filter, config: {json_field: key, equals: key-7, negate: true}}
                  - {step_name: windows, type: count, config: {window_ms: 1000, key_json_field: key}}
                sinks: {files: {type: file, path: unused}}
                bridge: {parallelism: 2, key: {json_field: key}}
                """);
        String summary = "read=20000 sent=20000 received=380 written=380";
        List<String> javaOutput = TestPipelines.runSorted(summary, dir.resolve("java"), pipeline.toString(),
                "--worker=java");
        assertEquals(javaOutput, TestPipelines.runSorted(summary, dir.resolve("rust"), pipeline.toString(),
                "--worker=rust"));
    }

    /**
     * A segment written for the prototype's worker (docs/examples/python/segments.py, its state the pickled instance)
     * runs in the Rust worker as in the Python worker, each session in a process of its own; killed mid-run (its
     * session processes then end too), the Rust worker is replaced in place from the state it checkpointed, and
     * the output is the same, with no record sent twice.
     */
    @Test
    void aPythonSegmentRunsInTheRustWorkerWithItsStateInTheCheckpoints(@TempDir Path dir) throws Exception {
        Path pipeline = TestPipelines.write(dir, "totals", """
                name: totals
                sources: {events: {type: generator, count: %d, rate: 4000, keys: 50, seed: 7}}
                steps:
                  - {step_name: key_totals, type: segments.KeyTotals, config: {field: value}}
                sinks: {files: {type: file, path: unused}}
                bridge: {parallelism: 2, key: {json_field: key}, checkpoint_interval_ms: 500}
                """.formatted(PYTHON_EVENTS));
        String segments = pythonSegments();
        List<String> pythonOutput = TestPipelines.runSorted(dir.resolve("python"), pipeline.toString(),
                "--worker=python", segments);
        assertEquals(PYTHON_EVENTS, pythonOutput.size());

        Path out = dir.resolve("rust");
        RunningJob run = TestPipelines.runInBackground(pipeline.toString(), "--output", out.toString(),
                "--worker=rust", segments);
        ProcessHandle worker = TestPeers.awaitSpawned(TestPeers.faultTarget("rust"), PYTHON_EVENTS / 3, run);
        // Each session with Python steps runs in a process of its own, so no two share a GIL.
        long sessionProcesses = worker.children()
                .filter(child -> child.info().commandLine().orElse("").contains("--one-session")).count();
        assertEquals(2, sessionProcesses, "processes of the Rust worker serving one session each");
        TestPeers.signal(worker, "KILL");
        assertTrue(run.get(3, TimeUnit.MINUTES).contains("every input accounted for"));

        List<String> rustOutput = TestPipelines.outputLines(out);
        rustOutput.sort(null);
        assertEquals(pythonOutput, rustOutput);
        run.assertSentOnceWithoutRestart(PYTHON_EVENTS);
        assertTrue(run.count(JobCounters.Count.WORKER_RECOVERIES) >= 1, "no recovery in place was counted");
    }

    /**
     * With flink-bridge.worker.python.refuse-pickled-state, a worker hosting Python segments keeps no pickled state:
     * a segment whose state is its pickled instance (docs/examples/python's KeyTotals) is refused when its session
     * opens, naming the segment and the way out, in the Python and the Rust worker alike.
     */
    @ParameterizedTest
    @ValueSource(strings = {"python", "rust"})
    void aWorkerRefusingPickledStateRefusesASegmentWithoutItsOwnState(String worker, @TempDir Path dir) {
        Path pipeline = TestPipelines.write(dir, "totals", """
                name: totals
                sources: {events: {type: generator, count: 1000, keys: 5, seed: 7}}
                steps:
                  - {step_name: key_totals, type: segments.KeyTotals, config: {field: value}}
                sinks: {files: {type: file, path: unused}}
                bridge: {checkpoint_interval_ms: 500}
                """);
        Exception refused = assertThrows(Exception.class, () -> LocalRunner.run(new String[] {pipeline.toString(),
                "--output", dir.resolve("out").toString(), "--worker=" + worker, pythonSegments(),
                "-D" + BridgeOptions.REFUSE_PICKLED_STATE.key() + "=true"}));
        String message = LocalRunner.causeMessage(refused);
        assertTrue(message.contains("segment 'key_totals' (segments.KeyTotals) keeps its state as its pickled "
                + "instance, which this worker refuses (--refuse-pickled-state)"), message);
    }

    private static String pythonSegments() {
        return "-D" + BridgeOptions.PYTHON_PATH.key() + "="
                + Path.of(System.getProperty("flink-bridge.home"), "docs", "examples", "python");
    }

    @Test
    void thePrototypesServiceIsRefusedNamingTheTransportsItServes(@TempDir Path dir) {
        IllegalArgumentException refused = assertThrows(IllegalArgumentException.class,
                () -> LocalRunner.run(new String[] {"--output", dir.toString(), "--worker=rust", "--transport=grpc",
                        "--grpc-mode=compat"}));
        assertTrue(refused.getMessage().contains("the Rust worker does not serve the prototype's service"),
                refused.getMessage());
    }
}
