package org.flinkbridge.runner;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.flinkbridge.bridge.BridgeOptions;
import org.flinkbridge.bridge.JobCounters;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.LongStream;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A segment package written for the prototype's worker loads unchanged: it carries its own stubs of the prototype's
 * proto, generated from {@code flink_worker/flink_worker.proto} as the prototype lays them out, and its segment
 * returns that package's {@code Message}. The worker's own classes for the same messages must not stand in its way
 * (both define {@code flink_worker.Message}). Each worker that hosts Python runs it over each session transport,
 * with checkpoints, and is killed mid-run: it is recovered in place from its checkpointed state, and every count
 * comes out once. A prototype habit that costs recovery in place, reading the wall clock, still ends exactly once.
 */
class PrototypePackageTest {

    private static final Path HOME = Path.of(System.getProperty("flink-bridge.home"));
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int EVENTS = 12_000;

    @ParameterizedTest(name = "{0} worker over {1}")
    @CsvSource({"python, shm", "python, grpc", "rust, shm", "rust, grpc"})
    void aPrototypePackageWithItsOwnStubsRunsAndRecoversInPlace(String worker, String transport, @TempDir Path dir)
            throws Exception {
        Path segments = prototypePackage(dir.resolve("segments"));
        Path pipeline = TestPipelines.perKey(dir, "{step_name: count, type: flink_worker.app_segments.RunningCount}",
                EVENTS, 3000, "transport: " + transport, "worker: " + worker);
        Path out = dir.resolve("out");

        CompletableFuture<String> run = TestPipelines.runInBackground(pipeline.toString(), "--output", out.toString(),
                "-D" + BridgeOptions.PYTHON_PATH.key() + "=" + segments);
        TestPeers.signal(TestPeers.awaitSpawned(TestPeers.faultTarget(worker), EVENTS / 3, run), "KILL");

        String summary = run.get(3, TimeUnit.MINUTES);
        assertTrue(summary.contains("every input accounted for"), summary);
        Map<String, List<Long>> counts = TestPipelines.runningCountsOnceEach(out);
        assertEquals(EVENTS, counts.values().stream().mapToLong(List::size).sum(), "counts in the output");
        assertEquals(EVENTS, JobCounters.get(JobCounters.Count.SENT), "the job restarted: records sent again");
        assertTrue(JobCounters.get(JobCounters.Count.WORKER_RECOVERIES) >= 1, "no recovery in place was counted");
    }

    /**
     * A prototype segment that reads the wall clock (a batch closed by {@code time.time()}, stamped with it) answers
     * a replay differently: killed mid-run, its worker's recovery in place finds the replayed batches differ and
     * fails the task, Flink restores the job from its checkpoint (records are sent again), and every record is in
     * exactly one committed batch all the same.
     */
    @Test
    void aSegmentReadingTheWallClockFallsBackToTheCheckpointAndStaysExactlyOnce(@TempDir Path dir) throws Exception {
        Path segments = prototypePackage(dir.resolve("segments"));
        Path pipeline = TestPipelines.perKey(dir, "{step_name: batch, type: flink_worker.app_segments.BatchingSegment}",
                EVENTS, 3000, "worker: python");
        Path out = dir.resolve("out");

        CompletableFuture<String> run = TestPipelines.runInBackground(pipeline.toString(), "--output", out.toString(),
                "-D" + BridgeOptions.PYTHON_PATH.key() + "=" + segments);
        TestPeers.signal(TestPeers.awaitSpawned(TestPeers.faultTarget("python"), EVENTS / 3, run), "KILL");

        // The summary's counts take in what the restored job read again, so the committed batches are the measure.
        run.get(3, TimeUnit.MINUTES);
        assertTrue(JobCounters.get(JobCounters.Count.SENT) > EVENTS, "the job did not restore from its checkpoint "
                + "(no record was sent again): the replay matched, or recovery in place was not asked");
        List<Long> ids = new ArrayList<>();
        for (String line : TestPipelines.committedLines(out)) {
            JSON.readTree(line).get("ids").forEach(id -> ids.add(id.asLong()));
        }
        ids.sort(null);
        assertEquals(LongStream.range(0, EVENTS).boxed().toList(), ids, "every record in exactly one batch");
    }

    /**
     * The package under {@code src/test/resources/prototype-package}, with its stubs generated by the protoc the
     * build uses from a copy of the prototype's proto placed at {@code flink_worker/flink_worker.proto}.
     */
    private static Path prototypePackage(Path into) throws IOException, InterruptedException {
        Path source = HOME.resolve("bridge-job/runner/src/test/resources/prototype-package");
        Path protos = into.resolveSibling("protos");
        Files.createDirectories(protos.resolve("flink_worker"));
        Files.copy(HOME.resolve("proto/wire/src/main/proto/flink_worker.proto"),
                protos.resolve("flink_worker/flink_worker.proto"));
        Files.createDirectories(into.resolve("flink_worker"));
        for (String file : List.of("__init__.py", "app_segments.py")) {
            Files.copy(source.resolve("flink_worker").resolve(file), into.resolve("flink_worker").resolve(file));
        }
        Process protoc = new ProcessBuilder(protoc(), "-I" + protos,
                "-I" + wellKnownTypes(), "--python_out=" + into, "flink_worker/flink_worker.proto")
                .directory(protos.toFile()).redirectErrorStream(true).start();
        String output = new String(protoc.getInputStream().readAllBytes());
        assertTrue(protoc.waitFor(60, TimeUnit.SECONDS) && protoc.exitValue() == 0, "protoc failed: " + output);
        assertTrue(Files.isRegularFile(into.resolve("flink_worker/flink_worker_pb2.py")), output);
        return into;
    }

    /** The protoc the proto module's build used (beside its gRPC plugin, protoc-gen-grpc-java-*). */
    private static String protoc() throws IOException {
        Path plugins = HOME.resolve("proto/wire/target/protoc-plugins");
        try (Stream<Path> files = Files.list(plugins)) {
            return files.filter(file -> file.getFileName().toString().matches("protoc-[0-9].*")).findFirst()
                    .orElseThrow(() -> new AssertionError("no protoc in " + plugins + ": build the project first"))
                    .toString();
        }
    }

    /** Where the build unpacked protobuf's own .proto files (google/protobuf/empty.proto, which ours imports). */
    private static Path wellKnownTypes() throws IOException {
        try (Stream<Path> unpacked = Files.list(HOME.resolve("proto/wire/target/protoc-dependencies"))) {
            return unpacked.filter(dir -> Files.isRegularFile(dir.resolve("google/protobuf/empty.proto"))).findFirst()
                    .orElseThrow(() -> new AssertionError("no google/protobuf/empty.proto under "
                            + "proto/wire/target/protoc-dependencies: build the project first"));
        }
    }
}
