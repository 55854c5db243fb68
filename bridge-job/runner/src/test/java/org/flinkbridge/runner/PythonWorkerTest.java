package org.flinkbridge.runner;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpc.ManagedChannel;
import org.flinkbridge.proto.control.BridgeControlGrpc;
import org.flinkbridge.proto.control.OpenSessionRequest;
import org.flinkbridge.proto.control.ProtocolVersion;
import org.flinkbridge.proto.control.SessionIdentity;
import org.flinkbridge.proto.control.StepSpec;
import org.flinkbridge.proto.control.TransportKind;
import org.flinkbridge.transport.grpc.ControlSecret;
import org.flinkbridge.transport.grpc.GrpcChannels;
import org.flinkbridge.transport.shm.RingFiles;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Python worker (workers/python/) serves the same jobs as the Java worker (the same output from the same pipeline
 * file: {@link WorkerLanguagesTest}; the prototype's service here), segments written in Python, failures that name their cause, and no process left
 * once its spawner is gone. Its recovery from faults is in {@link CheckpointRecoveryTest}.
 */
class PythonWorkerTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * The prototype's unary service, served by the Python worker with the segments the job hands it, gives what
     * the session transports give; the segment is a Python class beside the pipeline file.
     */
    @Test
    void thePrototypesServiceGivesWhatTheSessionTransportsGive(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("marks.py"), """
                class Mark:
                    def __init__(self, suffix):
                        self.suffix = suffix.encode()

                    def process(self, message):
                        message.payload += self.suffix
                        return [message]
                """);
        Path pipeline = TestPipelines.write(dir, "stateless", """
                name: stateless
                sources: {events: {type: generator, count: 2000, keys: 10, seed: 3}}
                steps:
                  - {step_name: mark, type: marks.Mark, config: {suffix: " marked"}}
                sinks: {out: {type: file, path: unused}}
                bridge: {parallelism: 2, worker: python}
                """);
        List<String> overShm = runPipeline(pipeline, dir.resolve("shm"));

        List<String> overCompat = runPipeline(pipeline, dir.resolve("compat"), "--transport=grpc",
                "--grpc-mode=compat");

        assertEquals(overShm, overCompat);
        assertEquals(2000, overShm.size());
        assertTrue(overShm.getFirst().endsWith("} marked"), overShm.getFirst());
    }

    private static List<String> runPipeline(Path pipeline, Path out, String... flags) throws Exception {
        List<String> args = new ArrayList<>(List.of(pipeline.toString()));
        args.addAll(List.of(flags));
        return TestPipelines.runSorted(out, args.toArray(String[]::new));
    }

    /** docs/examples/python: a segment class in the pipeline's folder, keyed state in a pickled instance. */
    @Test
    void thePythonExampleSumsEveryKeysEventsOnce(@TempDir Path dir) throws Exception {
        Path example = Path.of(System.getProperty("flink-bridge.home"), "docs", "examples", "python", "pipeline.yaml");

        String summary = LocalRunner.run(new String[] {example.toString(), "--output", dir.toString()});

        assertTrue(summary.contains("read=20000 sent=20000 received=20000 written=20000"), summary);
        Map<String, List<Long>> counts = new TreeMap<>();
        for (String line : TestPipelines.outputLines(dir)) {
            JsonNode total = JSON.readTree(line);
            counts.computeIfAbsent(total.get("key").asText(), key -> new ArrayList<>()).add(total.get("count").asLong());
        }
        assertEquals(50, counts.size());
        counts.forEach((key, seen) -> {
            seen.sort(null);
            for (int i = 0; i < seen.size(); i++) {
                assertEquals(i + 1, seen.get(i), key + ": counts are not 1..n: " + seen);
            }
        });
    }

    @Test
    void aSegmentThatRaisesFailsTheJobNamingTheStepTheExceptionAndWhereItWasRaised(@TempDir Path dir)
            throws Exception {
        Files.writeString(dir.resolve("picky.py"), """
                class RejectsOddIds:
                    def process(self, message):
                        if b'"id":3,' in message.payload:
                            raise ValueError("id 3 is odd")
                        return [message]
                """);
        Path pipeline = TestPipelines.write(dir, "picky", """
                name: picky
                sources: {events: {type: generator, count: 10}}
                steps:
                  - {step_name: reject_odd, type: picky.RejectsOddIds}
                sinks: {out: {type: print}}
                bridge: {worker: python}
                """);

        Exception error = assertThrows(Exception.class, () -> LocalRunner.run(new String[] {pipeline.toString()}));
        String message = LocalRunner.causeMessage(error);

        assertTrue(message.matches("(?s).*the worker failed input #\\d+: .*"), message);
        assertTrue(message.contains("step 'reject_odd' (picky.RejectsOddIds) failed: ValueError: id 3 is odd (at "
                + dir.resolve("picky.py") + ":4 in process)"), message);
    }

    /** The supervisor is killed: each session's process sees its parent change and ends within a second. */
    @Test
    void sessionProcessesEndWithTheirSupervisor() throws Exception {
        Process supervisor = TestPeers.startPythonWorker();
        try {
            String address = TestPeers.workerAddress(supervisor);
            ManagedChannel channel = GrpcChannels.open(address, ControlSecret.forDirectory(RingFiles.defaultDirectory()));
            try {
                for (int session = 0; session < 2; session++) {
                    BridgeControlGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS)
                            .openSession(OpenSessionRequest.newBuilder()
                                    .setProtocolVersion(ProtocolVersion.PROTOCOL_VERSION_CURRENT)
                                    .setIdentity(SessionIdentity.newBuilder().setJobName("orphans")
                                            .setOperatorName("segment 0").setSubtaskIndex(session).setParallelism(2))
                                    .addSteps(StepSpec.newBuilder().setName("count").setType("running_count")
                                            .setConfigJson("{\"key_header\":\"k\"}"))
                                    .setTransport(TransportKind.TRANSPORT_KIND_GRPC).setToken("t" + session)
                                    .build());
                }
            } finally {
                channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
            }
            List<ProcessHandle> sessions = supervisor.children().toList();
            assertEquals(2, sessions.size(), "one process per session");

            supervisor.destroyForcibly().waitFor(5, TimeUnit.SECONDS);

            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
            while (sessions.stream().anyMatch(ProcessHandle::isAlive) && System.nanoTime() < deadline) {
                Thread.sleep(50);
            }
            assertTrue(sessions.stream().noneMatch(ProcessHandle::isAlive), "a session process outlived its supervisor");
        } finally {
            supervisor.descendants().forEach(ProcessHandle::destroyForcibly);
            supervisor.destroyForcibly();
        }
    }
}
