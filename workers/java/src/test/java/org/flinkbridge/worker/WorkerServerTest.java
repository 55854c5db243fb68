package org.flinkbridge.worker;

import com.google.protobuf.ByteString;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import org.flinkbridge.proto.compat.Message;
import org.flinkbridge.proto.control.BridgeControlGrpc;
import org.flinkbridge.proto.control.HealthRequest;
import org.flinkbridge.proto.control.KeyGroupState;
import org.flinkbridge.proto.control.OpenSessionRequest;
import org.flinkbridge.proto.control.ProtocolVersion;
import org.flinkbridge.proto.control.SessionIdentity;
import org.flinkbridge.proto.control.SessionRef;
import org.flinkbridge.proto.control.StepSpec;
import org.flinkbridge.proto.control.TransportKind;
import org.flinkbridge.proto.data.Frame;
import org.flinkbridge.proto.data.FrameBatch;
import org.flinkbridge.proto.data.FrameType;
import org.flinkbridge.protocol.ErrorTexts;
import org.flinkbridge.transport.grpc.FrameStreamClient;
import org.flinkbridge.transport.grpc.ControlSecret;
import org.flinkbridge.transport.grpc.GrpcChannels;
import org.flinkbridge.transport.grpc.StatePieces;
import org.flinkbridge.transport.shm.RingFiles;
import org.flinkbridge.worker.steps.FailingStep;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The worker's gRPC endpoint, driven by the same client classes the bridge uses. */
class WorkerServerTest {

    /** These tests send a few small batches, which never wait for the stream, so no answer comes meanwhile. */
    private static final FrameStreamClient.Answers NOT_WHILE_SENDING = batch -> {
        throw new AssertionError("answers arrived while a small batch waited to be sent: " + batch);
    };

    private static final Pattern CUT = Pattern.compile(
            " \\.\\.\\. \\[\\d+ bytes cut; the whole text is in the worker's log] \\.\\.\\. ");

    private WorkerServer server;
    private ManagedChannel channel;
    private BridgeControlGrpc.BridgeControlBlockingStub control;

    @BeforeEach
    void start() throws IOException {
        server = WorkerServer.start("127.0.0.1", 0, RingFiles.defaultDirectory(), Map.of());
        channel = GrpcChannels.open("127.0.0.1:" + server.port(), secret());
        control = BridgeControlGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS);
    }

    @AfterEach
    void stop() throws Exception {
        GrpcChannels.close(channel);
        server.close();
    }

    private static OpenSessionRequest.Builder open(String token, StepSpec... steps) {
        return OpenSessionRequest.newBuilder()
                .setProtocolVersion(ProtocolVersion.PROTOCOL_VERSION_CURRENT)
                .setIdentity(SessionIdentity.newBuilder().setJobName("test").setOperatorName("op")
                        .setSubtaskIndex(1).setParallelism(2))
                .setTransport(TransportKind.TRANSPORT_KIND_GRPC)
                .setToken(token)
                .addAllSteps(List.of(steps));
    }

    private static StepSpec appendField() {
        return StepSpec.newBuilder().setName("mark").setType("append_field")
                .setConfigJson("{\"field\":\"seen\",\"value\":1}").build();
    }

    private static Frame record(long sequence, String json) {
        return Frame.newBuilder().setType(FrameType.RECORD).setSequence(sequence)
                .setRecord(Message.newBuilder().setPayload(ByteString.copyFromUtf8(json)).setTimestamp(sequence))
                .build();
    }

    /** Polls until {@code expected} frames arrived (or fails after the timeout). */
    private static List<Frame> receive(FrameStreamClient stream, int expected) throws IOException {
        List<Frame> frames = new ArrayList<>();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (frames.size() < expected && System.nanoTime() < deadline) {
            FrameBatch batch = stream.poll(TimeUnit.MILLISECONDS.toNanos(100));
            if (batch != null) {
                frames.addAll(batch.getFramesList());
            }
        }
        assertEquals(expected, frames.size(), "frames received: " + frames);
        return frames;
    }

    @Test
    void sessionAnswersEveryInputInOrder() throws IOException {
        String id = control.openSession(open("secret", appendField()).build()).getSessionId();
        try (FrameStreamClient stream = new FrameStreamClient(channel, id, "secret", "test", 16, 5_000)) {
            for (int i = 0; i < 100; i++) {
                stream.send(record(i, "{\"n\":" + i + "}"), NOT_WHILE_SENDING);
            }
            stream.send(Frame.newBuilder().setType(FrameType.WATERMARK).setSequence(100).setWatermark(99).build(),
                    NOT_WHILE_SENDING);
            stream.flush(NOT_WHILE_SENDING);

            List<Frame> frames = receive(stream, 201);
            for (int i = 0; i < 100; i++) {
                Frame output = frames.get(2 * i);
                assertEquals(FrameType.OUTPUT, output.getType());
                assertEquals(i, output.getSequence());
                assertEquals("{\"n\":" + i + ",\"seen\":1}", output.getRecord().getPayload().toStringUtf8());
                assertEquals(i, output.getRecord().getTimestamp());
                assertEquals(FrameType.END_OF_OUTPUTS, frames.get(2 * i + 1).getType());
                assertEquals(i, frames.get(2 * i + 1).getSequence());
            }
            assertEquals(FrameType.END_OF_OUTPUTS, frames.get(200).getType());
            assertEquals(100, frames.get(200).getSequence());
        }
        assertEquals(1, control.health(HealthRequest.getDefaultInstance()).getOpenSessions());
        control.closeSession(SessionRef.newBuilder().setSessionId(id).build());
        assertEquals(0, server.openSessions());
    }

    @Test
    void aFailedRecordAnswersWithAnErrorAndFailsTheSession() throws IOException {
        String id = control.openSession(open("t", appendField()).build()).getSessionId();
        try (FrameStreamClient stream = new FrameStreamClient(channel, id, "t", "test", 16, 5_000)) {
            stream.send(record(0, "not json"), NOT_WHILE_SENDING);
            stream.send(record(1, "{\"ok\":true}"), NOT_WHILE_SENDING);
            stream.flush(NOT_WHILE_SENDING);

            List<Frame> frames = receive(stream, 2);
            assertEquals(FrameType.ERROR, frames.get(0).getType());
            assertEquals(0, frames.get(0).getSequence());
            assertTrue(frames.get(0).getError().contains("mark"), frames.get(0).getError());
            assertEquals(FrameType.ERROR, frames.get(1).getType());
            assertTrue(frames.get(1).getError().startsWith("session already failed"), frames.get(1).getError());
        }
    }

    @Test
    void aWrongTokenIsRefused() throws IOException {
        String id = control.openSession(open("right", appendField()).build()).getSessionId();
        try (FrameStreamClient stream = new FrameStreamClient(channel, id, "wrong", "test", 16, 5_000)) {
            // The refusal may come back before the flush or only while receiving: either way it must come.
            IOException error = assertThrows(IOException.class, () -> {
                stream.send(record(0, "{}"), NOT_WHILE_SENDING);
                stream.flush(NOT_WHILE_SENDING);
                receive(stream, 1);
            });
            assertTrue(error.getMessage().contains("PERMISSION_DENIED"), error.getMessage());
            assertTrue(error.getMessage().contains("token does not match"), error.getMessage());
        }
    }

    @Test
    void anOtherProtocolVersionIsRefused() {
        // Version 1 sent a session's state in one message, 2 had no CLOCK inputs, 3 no failed inputs, 4 no cells, 5
        // no timers: this worker speaks 6.
        for (int version : new int[] {1, 2, 3, 4, 5}) {
            StatusRuntimeException error = assertThrows(StatusRuntimeException.class, () -> control.openSession(
                    open("t", appendField()).setProtocolVersionValue(version).build()));
            assertEquals(Status.Code.FAILED_PRECONDITION, error.getStatus().getCode());
            assertEquals("protocol version " + version + " is not supported; this worker speaks 6",
                    error.getStatus().getDescription());
        }
    }

    @Test
    void anUnknownStepIsRefusedNamingIt() {
        StatusRuntimeException error = assertThrows(StatusRuntimeException.class, () -> control.openSession(
                open("t", StepSpec.newBuilder().setName("oops").setType("no_such_step").build()).build()));
        assertEquals(Status.Code.INVALID_ARGUMENT, error.getStatus().getCode());
        assertTrue(error.getStatus().getDescription().contains("no_such_step"), error.getMessage());
    }

    /**
     * A step whose building fails with a message of over 100 KiB: the refusal names the session, the step and the
     * exception, cut to what the bridge takes instead of failing the call as a transport error.
     */
    @Test
    void aStepThatCannotBeBuiltWithAHugeMessageIsRefusedWithItsTextCut() {
        StatusRuntimeException error = assertThrows(StatusRuntimeException.class, () -> control.openSession(
                open("t", failing("open")).build()));

        assertEquals(Status.Code.INVALID_ARGUMENT, error.getStatus().getCode(), error.toString());
        assertCut(error.getStatus().getDescription(), "session ", "step 'failing' (" + FailingStep.class.getName()
                + ") failed to open: java.lang.IllegalStateException: " + FailingStep.MESSAGE_START);
    }

    @Test
    void aStepFailingARecordWithAHugeMessageAnswersAnErrorWithItsTextCut() throws IOException {
        String id = control.openSession(open("t", failing("process")).build()).getSessionId();
        try (FrameStreamClient stream = new FrameStreamClient(channel, id, "t", "test", 16, 5_000)) {
            stream.send(record(0, "{}"), NOT_WHILE_SENDING);
            stream.flush(NOT_WHILE_SENDING);

            Frame error = receive(stream, 1).getFirst();
            assertEquals(FrameType.ERROR, error.getType(), error.toString());
            assertCut(error.getError(), "java.lang.IllegalStateException: " + FailingStep.MESSAGE_START);
        }
    }

    @Test
    void aStateThatFailsToRestoreWithAHugeMessageIsRefusedWithItsTextCut() {
        String id = control.openSession(open("t", failing("restore")).build()).getSessionId();
        // SegmentChain's encoding of one step's state: the step count, then each state's length and bytes.
        ByteString oneStepsState = ByteString.copyFrom(new byte[] {0, 0, 0, 1, 0, 0, 0, 1, 7});

        StatusRuntimeException error = assertThrows(StatusRuntimeException.class, () -> StatePieces.restore(channel,
                id, List.of(KeyGroupState.newBuilder().setKeyGroup(3).setState(oneStepsState).build()), 10_000));

        assertEquals(Status.Code.INTERNAL, error.getStatus().getCode(), error.toString());
        assertCut(error.getStatus().getDescription(), "session " + id, ": cannot restore its state: "
                + "java.lang.IllegalStateException: " + FailingStep.MESSAGE_START);
    }

    private static StepSpec failing(String where) {
        return StepSpec.newBuilder().setName("failing").setType(FailingStep.class.getName())
                .setConfigJson("{\"fail_in\":\"" + where + "\"}").build();
    }

    /**
     * {@code text} is the worker's own, cut (docs/protocol.md, "Error texts"): it starts with {@code start}, holds
     * {@code kept} and the marker, and fits the bytes the bridge takes.
     */
    private static void assertCut(String text, String start, String... kept) {
        assertTrue(text.startsWith(start), text);
        for (String part : kept) {
            assertTrue(text.contains(part), "'" + part + "' is not in " + text);
        }
        assertTrue(CUT.matcher(text).find(), text);
        assertTrue(ErrorTexts.encodedLength(text) <= ErrorTexts.MAX_BYTES, ErrorTexts.encodedLength(text) + " bytes");
    }

    /**
     * A bridge that crashes cannot call CloseSession: its data stream breaks, and that ends the session on
     * the worker (otherwise its state and instances would stay open for good).
     */
    @Test
    void aSessionWhoseStreamBreaksIsClosed() throws Exception {
        String id = control.openSession(open("secret", appendField()).build()).getSessionId();
        ManagedChannel crashing = GrpcChannels.open("127.0.0.1:" + server.port(), secret());
        FrameStreamClient stream = new FrameStreamClient(crashing, id, "secret", "test", 16, 5_000);
        stream.send(record(0, "{}"), NOT_WHILE_SENDING);
        stream.flush(NOT_WHILE_SENDING);
        receive(stream, 2);
        assertEquals(1, openSessions());

        crashing.shutdownNow();

        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (openSessions() > 0 && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertEquals(0, openSessions(), "the session of a bridge whose stream broke is still open");
    }

    /** Knowing the worker's id (Health tells anyone who can reach it) must not let one name a session. */
    @Test
    void sessionIdsCarry128RandomBits() {
        String workerId = control.health(HealthRequest.getDefaultInstance()).getWorkerId();
        String first = control.openSession(open("t", appendField()).build()).getSessionId();
        String second = control.openSession(open("t", appendField()).build()).getSessionId();

        for (String id : List.of(first, second)) {
            assertTrue(id.matches(java.util.regex.Pattern.quote(workerId) + "-[0-9a-f]{32}"), id);
        }
        assertTrue(!first.equals(second) && !first.substring(workerId.length()).equals("-1"), first + " " + second);
    }

    private int openSessions() {
        return control.health(HealthRequest.getDefaultInstance()).getOpenSessions();
    }

    private static ControlSecret secret() throws IOException {
        return ControlSecret.forDirectory(RingFiles.defaultDirectory());
    }
}
