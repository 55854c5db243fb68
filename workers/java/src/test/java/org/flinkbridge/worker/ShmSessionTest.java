package org.flinkbridge.worker;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import org.flinkbridge.proto.control.OpenSessionRequest;
import org.flinkbridge.proto.control.ProtocolVersion;
import org.flinkbridge.proto.control.SessionIdentity;
import org.flinkbridge.proto.control.ShmRing;
import org.flinkbridge.proto.control.StepSpec;
import org.flinkbridge.proto.control.TransportKind;
import org.flinkbridge.protocol.RecordCodec;
import org.flinkbridge.protocol.FrameType;
import org.flinkbridge.transport.shm.RingConsumer;
import org.flinkbridge.transport.shm.RingFile;
import org.flinkbridge.transport.shm.RingProducer;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The worker serving shm sessions, driven through a real ring file and its control service. */
class ShmSessionTest extends WorkerServerFixture {

    private static final String TOKEN = "6f1c0a9e2b7d4e3f8a5c1b0d9e2f7a6c";

    private static OpenSessionRequest open(RingFile ring, String token) {
        return open(ring.path(), token, 5_000);
    }

    private static OpenSessionRequest open(Path ring, String token, int livenessTimeoutMillis) {
        return OpenSessionRequest.newBuilder()
                .setProtocolVersion(ProtocolVersion.PROTOCOL_VERSION_CURRENT)
                .setIdentity(SessionIdentity.newBuilder().setJobName("test").setOperatorName("op").setParallelism(1))
                .setTransport(TransportKind.TRANSPORT_KIND_SHM)
                .setToken(token)
                .setRing(ShmRing.newBuilder().setPath(ring.toString()).setToWorkerCapacity(4096)
                        .setFromWorkerCapacity(4096).setLivenessTimeoutMs(livenessTimeoutMillis))
                .addSteps(StepSpec.newBuilder().setName("mark").setType("append_field")
                        .setConfigJson("{\"field\":\"seen\",\"value\":1}"))
                .build();
    }

    @Test
    void recordsAreAnsweredInOrderThroughTheRing() throws Exception {
        try (RingFile ring = RingFile.create(rings.resolve("s.ring"), 4096, 4096, TOKEN)) {
            control.openSession(open(ring, TOKEN));
            RingProducer inputs = ring.toWorkerProducer();
            RingConsumer answers = ring.fromWorkerConsumer();
            List<String> received = new ArrayList<>();
            int records = 2_000;
            int sent = 0;
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (received.size() < 2 * records && System.nanoTime() < deadline) {
                while (sent < records && sent - received.size() / 2 < 64) {
                    byte[] payload = ("{\"n\":" + sent + "}").getBytes(StandardCharsets.UTF_8);
                    long body = inputs.tryClaim(FrameType.RECORD, sent, RecordCodec.bodyLength(Map.of(), payload));
                    if (body < 0) {
                        break;
                    }
                    RecordCodec.write(inputs.segment(), body, sent, Map.of(), payload);
                    sent++;
                }
                inputs.publish();
                answers.poll((type, flags, sequence, file, offset, length) -> received.add(switch (type) {
                    case FrameType.OUTPUT -> sequence + " " + RecordCodec.read(file, offset, length,
                            (timestamp, headers, payload) -> new String(payload, StandardCharsets.UTF_8));
                    case FrameType.END_OF_OUTPUTS -> sequence + " end";
                    default -> sequence + " " + FrameType.name(type);
                }), 256);
                answers.awaitFrames(TimeUnit.MILLISECONDS.toNanos(10));
            }
            assertEquals(2 * records, received.size(), "answers within 30 s");
            for (int i = 0; i < records; i++) {
                assertEquals(i + " {\"n\":" + i + ",\"seen\":1}", received.get(2 * i));
                assertEquals(i + " end", received.get(2 * i + 1));
            }
        }
    }

    @Test
    void aSessionWhoseRingCarriesAnotherTokenIsRefused() throws Exception {
        try (RingFile ring = RingFile.create(rings.resolve("s.ring"), 4096, 4096, TOKEN)) {
            StatusRuntimeException refused = assertThrows(StatusRuntimeException.class,
                    () -> control.openSession(open(ring, "0000000000000000ffffffffffffffff")));

            assertEquals(Status.Code.FAILED_PRECONDITION, refused.getStatus().getCode());
            assertTrue(refused.getStatus().getDescription().endsWith(
                    "cannot use the ring: " + ring.path() + ": the session token does not match; refusing the ring"),
                    refused.getStatus().getDescription());
            assertEquals(0, server.openSessions());
        }
    }

    @Test
    void aSessionEndsWhenTheBridgeClosesItsRing() throws Exception {
        RingFile ring = RingFile.create(rings.resolve("s.ring"), 4096, 4096, TOKEN);
        control.openSession(open(ring, TOKEN));
        assertEquals(1, server.openSessions());

        ring.close();

        awaitTrue(() -> server.openSessions() == 0, "the worker still holds the session 5 s after the bridge left");
    }

    /**
     * A session can only name a ring file the worker would expect a bridge to have made: a {@code .ring} file
     * directly in its ring directory, a regular file of this user with mode 0600. Refusals say which rule was
     * broken and nothing of the file's contents or size.
     */
    @Test
    void aSessionNamingAnyOtherFileIsRefusedWithoutLearningItsContents() throws Exception {
        Path outside = Files.writeString(dir.resolve("secret.ring"), "top secret contents");
        Files.setPosixFilePermissions(outside, PosixFilePermissions.fromString("rw-------"));
        Files.createDirectories(rings);
        Path link = Files.createSymbolicLink(rings.resolve("link.ring"), outside);
        Path readable = Files.writeString(rings.resolve("readable.ring"), "top secret contents");
        Files.setPosixFilePermissions(readable, PosixFilePermissions.fromString("rw-r--r--"));
        Path notARing = Files.writeString(rings.resolve("not-a-ring.ring"), "top secret contents");
        Files.setPosixFilePermissions(notARing, PosixFilePermissions.fromString("rw-------"));

        Map<String, String> refusals = new java.util.LinkedHashMap<>();
        refusals.put("/etc/passwd", "is not a .ring file in this worker's ring directory");
        refusals.put(outside.toString(), "is not a .ring file in this worker's ring directory");
        refusals.put(rings.resolve("../secret.ring").toString(), "is not a .ring file in this worker's ring directory");
        refusals.put(link.toString(), "is not a regular file");
        refusals.put(readable.toString(), "has mode rw-r--r--; a ring file is rw-------");
        refusals.put(notARing.toString(), ": not a ring file");
        for (Map.Entry<String, String> refusal : refusals.entrySet()) {
            StatusRuntimeException error = assertThrows(StatusRuntimeException.class,
                    () -> control.openSession(open(Path.of(refusal.getKey()), TOKEN, 5_000)), refusal.getKey());
            String message = error.getStatus().getDescription();
            assertEquals(Status.Code.FAILED_PRECONDITION, error.getStatus().getCode(), message);
            assertTrue(message.contains(refusal.getValue()), message);
            assertFalse(message.contains("secret contents") || message.contains("bytes"), message);
        }
        assertEquals(0, server.openSessions());
    }

    /**
     * A bridge process that crashed (SIGKILL, as with its TaskManager) is lost once its heartbeat has been
     * silent past the session's liveness timeout: its pid is not looked at (the bridge may live in another PID
     * namespace), and the ring file it can no longer remove is removed by the worker.
     */
    @Test
    void aSessionEndsAndItsRingGoesWhenTheBridgeProcessCrashes() throws Exception {
        Path path = rings.resolve("s.ring");
        Process bridge = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                CrashingBridge.class.getName(), path.toString(), TOKEN).redirectErrorStream(true).start();
        try {
            String ready = new java.io.BufferedReader(new java.io.InputStreamReader(bridge.getInputStream(),
                    StandardCharsets.UTF_8)).readLine();
            assertEquals("ready", ready, "the bridge process did not create its ring");
            control.openSession(open(path, TOKEN, 1_000));
            assertEquals(1, server.openSessions());

            bridge.destroyForcibly().waitFor();

            awaitTrue(() -> server.openSessions() == 0, "the worker still holds the session of a crashed bridge");
            awaitTrue(() -> !Files.exists(path), "the crashed bridge's ring file is still there");
        } finally {
            bridge.destroyForcibly();
        }
    }

    /** A bridge side that creates a ring file and then only lives (beating its heartbeat) until it is killed. */
    public static final class CrashingBridge {
        public static void main(String[] args) throws Exception {
            try (RingFile ignored = RingFile.create(Path.of(args[0]), 4096, 4096, args[1])) {
                System.out.println("ready");
                System.out.flush();
                Thread.sleep(Long.MAX_VALUE);
            }
        }
    }

    private static void awaitTrue(BooleanSupplier condition, String failure) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError(failure);
            }
            Thread.sleep(20);
        }
    }
}
