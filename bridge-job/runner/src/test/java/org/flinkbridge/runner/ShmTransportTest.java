package org.flinkbridge.runner;

import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.stub.StreamObserver;
import org.flinkbridge.proto.control.BridgeControlGrpc;
import org.flinkbridge.proto.control.HealthRequest;
import org.flinkbridge.proto.control.HealthResponse;
import org.flinkbridge.proto.control.OpenSessionRequest;
import org.flinkbridge.proto.control.OpenSessionResponse;
import org.flinkbridge.transport.grpc.ControlSecret;
import org.flinkbridge.transport.grpc.GrpcChannels;
import org.flinkbridge.transport.shm.RingFile;
import org.flinkbridge.transport.shm.RingFiles;
import org.flinkbridge.transport.shm.RingLayout;
import org.flinkbridge.transport.shm.RingProducer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The shared-memory transport end to end: real worker processes serving sessions through ring files, the
 * same results as the gRPC data plane, no record bytes over gRPC, and corrupt frames named.
 */
class ShmTransportTest {

    private static final int EVENTS = 20_000;
    private static final String DATA_EXCHANGE = "flinkbridge.v1.BridgeData/Exchange";

    @Test
    void shmAndGrpcGiveTheSameOutputAndCounts(@TempDir Path dir) throws Exception {
        Path pipeline = TestPipelines.write(dir, "e2e", BridgeJobEndToEndTest.examplePipeline(EVENTS));
        Path shmOut = dir.resolve("shm");
        Path grpcOut = dir.resolve("grpc");

        String shm = LocalRunner.run(new String[] {pipeline.toString(), "--transport=shm", "--output", shmOut.toString()});
        String grpc = LocalRunner.run(new String[] {pipeline.toString(), "--transport=grpc", "--output",
                grpcOut.toString()});

        List<String> shmLines = TestPipelines.outputLines(shmOut);
        BridgeJobEndToEndTest.assertEvents(shmLines, EVENTS);
        assertEquals(TestPipelines.outputLines(grpcOut).stream().sorted().toList(), shmLines.stream().sorted().toList(),
                "the two transports wrote different output");
        assertTrue(shm.contains(" over shm: "), shm);
        assertEquals(counts(grpc), counts(shm));
        assertEquals(List.of(), ringFiles(), "ring files left after the job");
    }

    /**
     * The Rust worker runs a session with Python steps in a process of its own and hands that session's calls on
     * to it: its counts include the calls it handed on.
     */
    @ParameterizedTest
    @ValueSource(strings = {"java", "python", "rust"})
    void noRecordBytesTravelOverGrpcInShmMode(String language, @TempDir Path dir) throws Exception {
        String yaml = BridgeJobEndToEndTest.examplePipeline(EVENTS);
        if (language.equals("rust")) {
            yaml = yaml.replace("steps:\n", "steps:\n  - {step_name: totals, type: segments.KeyTotals}\n");
        }
        Path pipeline = TestPipelines.write(dir, "e2e", yaml);
        Process worker = switch (language) {
            case "java" -> TestPeers.startWorker();
            case "python" -> TestPeers.startPythonWorker();
            default -> TestPeers.startRustWorker(
                    Path.of(System.getProperty("flink-bridge.home"), "docs", "examples", "python"));
        };
        try {
            String address = TestPeers.workerAddress(worker);

            LocalRunner.run(new String[] {pipeline.toString(), "--transport=shm", "--worker-address", address,
                    "--output", dir.resolve("shm").toString()});
            Map<String, Long> afterShm = receivedBytes(address);
            LocalRunner.run(new String[] {pipeline.toString(), "--transport=grpc", "--worker-address", address,
                    "--output", dir.resolve("grpc").toString()});
            Map<String, Long> afterGrpc = receivedBytes(address);

            long recordBytes = TestPipelines.outputLines(dir.resolve("shm")).stream().mapToLong(String::length).sum();
            assertTrue(recordBytes > 1_000_000, "the job moved " + recordBytes + " bytes of records");
            assertEquals(0L, afterShm.getOrDefault(DATA_EXCHANGE, 0L), "data stream bytes in shm mode: " + afterShm);
            long controlBytes = afterShm.values().stream().mapToLong(Long::longValue).sum();
            assertTrue(controlBytes < 16 * 1024, "gRPC carried " + controlBytes + " bytes in shm mode: " + afterShm);
            // The same counter sees the records when they do travel over gRPC.
            assertTrue(afterGrpc.getOrDefault(DATA_EXCHANGE, 0L) > recordBytes / 2, "grpc mode: " + afterGrpc);
        } finally {
            worker.descendants().forEach(ProcessHandle::destroyForcibly);
            worker.destroyForcibly().waitFor();
        }
    }

    @Test
    void aCorruptFrameFromTheWorkerFailsTheSessionNamingIt(@TempDir Path dir) throws Exception {
        List<RingFile> attached = new CopyOnWriteArrayList<>();
        BridgeControlGrpc.BridgeControlImplBase corruptPeer = new BridgeControlGrpc.BridgeControlImplBase() {
            @Override
            public void openSession(OpenSessionRequest request, StreamObserver<OpenSessionResponse> reply) {
                try {
                    RingFile ring = RingFile.attach(Path.of(request.getRing().getPath()), request.getToken());
                    attached.add(ring);
                    RingProducer answers = ring.fromWorkerProducer();
                    long body = answers.tryClaim(org.flinkbridge.protocol.FrameType.END_OF_OUTPUTS, 0, 0);
                    answers.segment().set(ValueLayout.JAVA_SHORT, body - RingLayout.FRAME_HEADER + RingLayout.FRAME_TYPE,
                            (short) 99);
                    answers.publish();
                } catch (Exception e) {
                    reply.onError(e);
                    return;
                }
                reply.onNext(OpenSessionResponse.newBuilder().setSessionId("corrupt-1").build());
                reply.onCompleted();
            }
        };
        Server server = TestPeers.start(corruptPeer);
        try {
            Path pipeline = TestPipelines.write(dir, "p", BridgeJobEndToEndTest.examplePipeline(1_000));

            Exception error = assertThrows(Exception.class, () -> LocalRunner.run(new String[] {pipeline.toString(),
                    "--transport=shm", "--parallelism=1", "--worker-address", "127.0.0.1:" + server.getPort(),
                    "--output", dir.resolve("out").toString()}));

            String message = LocalRunner.causeMessage(error);
            assertTrue(message.contains("session corrupt-1"), message);
            assertTrue(message.contains("(from-worker ring): corrupt frame at position 0 (ring offset 0): unknown frame "
                    + "type 99"), message);
        } finally {
            TestPeers.stop(server);
            for (RingFile ring : attached) {
                ring.close();
            }
        }
    }

    private static Map<String, Long> receivedBytes(String address) throws InterruptedException, IOException {
        ManagedChannel channel = GrpcChannels.open(address, ControlSecret.forDirectory(RingFiles.defaultDirectory()));
        try {
            HealthResponse health = BridgeControlGrpc.newBlockingStub(channel).health(HealthRequest.getDefaultInstance());
            return health.getReceivedBytesMap();
        } finally {
            GrpcChannels.close(channel);
        }
    }

    /** The summary's counts, without the transport's name. */
    private static String counts(String summary) {
        return summary.substring(summary.indexOf("read="), summary.indexOf(" - "));
    }

    private static List<Path> ringFiles() throws Exception {
        Path directory = RingFiles.defaultDirectory();
        if (!Files.isDirectory(directory)) {
            return List.of();
        }
        try (Stream<Path> files = Files.list(directory)) {
            return files.filter(file -> file.toString().endsWith(RingFiles.SUFFIX)).toList();
        }
    }
}
