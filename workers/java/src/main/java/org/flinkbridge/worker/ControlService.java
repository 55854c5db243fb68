package org.flinkbridge.worker;

import io.grpc.Status;
import io.grpc.StatusException;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import org.flinkbridge.proto.control.Ack;
import org.flinkbridge.proto.control.BridgeControlGrpc;
import org.flinkbridge.proto.control.CheckpointNotification;
import org.flinkbridge.proto.control.HealthRequest;
import org.flinkbridge.proto.control.HealthResponse;
import org.flinkbridge.proto.control.KeyGroupState;
import org.flinkbridge.proto.control.OpenSessionRequest;
import org.flinkbridge.proto.control.OpenSessionResponse;
import org.flinkbridge.proto.control.ProtocolVersion;
import org.flinkbridge.proto.control.RestoreStateRequest;
import org.flinkbridge.proto.control.SessionRef;
import org.flinkbridge.proto.control.ShmRing;
import org.flinkbridge.proto.control.SnapshotStateRequest;
import org.flinkbridge.proto.control.SnapshotStateResponse;
import org.flinkbridge.proto.control.TransportKind;
import org.flinkbridge.protocol.ErrorTexts;
import org.flinkbridge.protocol.KeyGroups;
import org.flinkbridge.transport.grpc.FrameStreamService;
import org.flinkbridge.transport.grpc.GrpcChannels;
import org.flinkbridge.transport.grpc.StatePieces;
import org.flinkbridge.transport.shm.RingFile;
import org.flinkbridge.transport.shm.RingFiles;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import com.google.protobuf.UnsafeByteOperations;

import java.io.IOException;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;

/** The worker's control plane: sessions open, snapshot, restore and close here; records never pass here. */
final class ControlService extends BridgeControlGrpc.BridgeControlImplBase
        implements FrameStreamService.SessionResolver {

    private static final Logger LOG = LoggerFactory.getLogger(ControlService.class);

    private final String workerId;
    private final long startedAt = System.currentTimeMillis();
    /** Session ids carry 128 random bits: knowing the worker's id (Health tells it) must not name a session. */
    private static final SecureRandom SESSION_IDS = new SecureRandom();
    private final Map<String, Open> sessions = new ConcurrentHashMap<>();
    private volatile boolean stopping;

    /** A bridge that reads no piece of its state for this long is gone (its own deadline usually ends it first). */
    private static final long STATE_TRANSFER_TIMEOUT_MILLIS = 60_000;

    private final TrafficCounter traffic;
    private final Path ringDirectory;

    /** @param ringDirectory the only directory whose ring files this worker opens */
    ControlService(String workerId, TrafficCounter traffic, Path ringDirectory) {
        this.workerId = workerId;
        this.traffic = traffic;
        this.ringDirectory = ringDirectory;
    }

    @Override
    public void openSession(OpenSessionRequest request, StreamObserver<OpenSessionResponse> reply) {
        call(reply, () -> {
            if (request.getProtocolVersion() != ProtocolVersion.PROTOCOL_VERSION_CURRENT) {
                throw Status.FAILED_PRECONDITION.withDescription("protocol version "
                        + request.getProtocolVersionValue() + " is not supported; this worker speaks "
                        + ProtocolVersion.PROTOCOL_VERSION_CURRENT_VALUE).asException();
            }
            if (request.getTransport() != TransportKind.TRANSPORT_KIND_GRPC
                    && request.getTransport() != TransportKind.TRANSPORT_KIND_SHM) {
                throw Status.UNIMPLEMENTED.withDescription("transport " + request.getTransport()
                        + " is not served by this worker").asException();
            }
            if (request.getToken().isEmpty()) {
                throw Status.INVALID_ARGUMENT.withDescription("a session needs a token").asException();
            }
            if (stopping) {
                throw Status.UNAVAILABLE.withDescription("worker " + workerId + " is stopping, as asked")
                        .asException();
            }
            byte[] random = new byte[16];
            SESSION_IDS.nextBytes(random);
            String id = workerId + "-" + HexFormat.of().formatHex(random);
            String name = WorkerSession.describe(id, request.getIdentity());
            WorkerSession session;
            try {
                session = WorkerSession.of(id, request.getToken(), name, request.getStepsList(), request.getKeyed());
            } catch (RuntimeException e) {
                throw Status.INVALID_ARGUMENT.withDescription(name + ": cannot build segment "
                        + request.getSegmentId() + ": " + e.getMessage()).withCause(e).asException();
            }
            String withoutKey = session.withoutKey();
            if (withoutKey != null) {
                session.close();
                throw Status.FAILED_PRECONDITION.withDescription(withoutKey).asException();
            }
            Open open = new Open(session, request.getTransport());
            sessions.put(id, open);
            if (request.getTransport() == TransportKind.TRANSPORT_KIND_SHM) {
                try {
                    open.ring = serveRing(session, request);
                } catch (StatusException e) {
                    sessions.remove(id);
                    session.close();
                    throw e;
                }
            }
            LOG.info("opened {} with {} step(s){} over {}", name, request.getStepsCount(),
                    request.getKeyed() ? ", keyed, " + session.cells().size() + " cell(s)"
                            + (session.setsTimers() ? ", timers," : ",") : "",
                    request.getTransport());
            return OpenSessionResponse.newBuilder()
                    .setSessionId(id)
                    .setWorkerId(workerId)
                    .setProtocolVersion(ProtocolVersion.PROTOCOL_VERSION_CURRENT)
                    .addAllCells(session.cells().toProto())
                    .setTimers(session.setsTimers())
                    .build();
        });
    }

    /** Maps the session's ring (checking its header and token) and starts the thread that serves it. */
    private ShmSessionLoop serveRing(WorkerSession session, OpenSessionRequest request) throws StatusException {
        ShmRing ring = request.getRing();
        if (ring.getPath().isEmpty() || ring.getLivenessTimeoutMs() == 0) {
            throw Status.INVALID_ARGUMENT.withDescription(session.name()
                    + ": an shm session needs a ring path and a liveness timeout").asException();
        }
        RingFile mapped;
        try {
            mapped = RingFile.attach(RingFiles.checkRingPath(ringDirectory, ring.getPath()), request.getToken());
        } catch (IOException e) {
            throw Status.FAILED_PRECONDITION.withDescription(session.name() + ": cannot use the ring: "
                    + e.getMessage()).withCause(e).asException();
        }
        return ShmSessionLoop.start(session, mapped, ring.getLivenessTimeoutMs(),
                () -> end(session.id(), "its ring is no longer served"));
    }

    @Override
    public void streamBroken(String sessionId, Status status) {
        end(sessionId, "its data stream broke (" + GrpcChannels.describe(status) + "), so the bridge is gone");
    }

    /** Closes a session the bridge can no longer close itself, and says why. */
    private void end(String sessionId, String why) {
        Open open = sessions.remove(sessionId);
        if (open != null) {
            LOG.info("{}: ended: {}", open.session.name(), why);
            open.close();
        }
    }

    @Override
    public FrameStreamService.SessionHandler attach(String sessionId, String token) throws StatusException {
        Open open = open(sessionId);
        if (!open.session.tokenMatches(token)) {
            throw Status.PERMISSION_DENIED.withDescription(open.session.name() + ": token does not match")
                    .asException();
        }
        if (open.transport != TransportKind.TRANSPORT_KIND_GRPC) {
            throw Status.FAILED_PRECONDITION.withDescription(open.session.name()
                    + " is served over its shared-memory ring, not a gRPC stream").asException();
        }
        return new StreamSessionAdapter(open.session, endStream -> open.endStream = endStream);
    }

    /** Streams the state in pieces, each message when the bridge is ready for it. */
    @Override
    public void snapshotState(SnapshotStateRequest request, StreamObserver<SnapshotStateResponse> reply) {
        try {
            List<KeyGroupState> pieces = new ArrayList<>();
            session(request.getSessionId()).snapshot().forEach((keyGroup, state) -> pieces.addAll(StatePieces.cut(
                    KeyGroups.toOptional(keyGroup), UnsafeByteOperations.unsafeWrap(state))));
            StatePieces.send(pieces, states -> SnapshotStateResponse.newBuilder().addAllStates(states).build(),
                    (ServerCallStreamObserver<SnapshotStateResponse>) reply, STATE_TRANSFER_TIMEOUT_MILLIS);
            reply.onCompleted();
        } catch (Exception e) {
            fail(reply, e);
        }
    }

    @Override
    public StreamObserver<RestoreStateRequest> restoreState(StreamObserver<Ack> reply) {
        return new StreamObserver<>() {
            private final StateAssembler assembler = new StateAssembler();
            private String sessionId;
            private StatusException failed;

            @Override
            public void onNext(RestoreStateRequest request) {
                if (failed != null) {
                    return;
                }
                try {
                    if (sessionId != null && !sessionId.equals(request.getSessionId())) {
                        throw Status.INVALID_ARGUMENT.withDescription("one RestoreState stream names sessions "
                                + sessionId + " and " + request.getSessionId()).asException();
                    }
                    sessionId = request.getSessionId();
                    for (KeyGroupState piece : request.getStatesList()) {
                        assembler.add(piece);
                    }
                } catch (StatusException e) {
                    failed = e;
                }
            }

            @Override
            public void onError(Throwable t) {
                LOG.warn("a state restore for session {} broke off: {}", sessionId, Status.fromThrowable(t));
            }

            @Override
            public void onCompleted() {
                call(reply, () -> {
                    if (failed != null) {
                        throw failed;
                    }
                    SortedMap<Integer, byte[]> states = assembler.states();
                    WorkerSession session = session(sessionId);
                    try {
                        session.restore(states);
                    } catch (Exception e) {
                        throw Status.INTERNAL.withDescription(session.name() + ": cannot restore its state: " + e)
                                .withCause(e).asException();
                    }
                    return Ack.getDefaultInstance();
                });
            }
        };
    }

    @Override
    public void notifyCheckpoint(CheckpointNotification request, StreamObserver<Ack> reply) {
        call(reply, () -> {
            session(request.getSessionId()).checkpointFinished(request.getCheckpointId(), request.getCompleted());
            return Ack.getDefaultInstance();
        });
    }

    @Override
    public void closeSession(SessionRef request, StreamObserver<Ack> reply) {
        call(reply, () -> {
            Open open = sessions.remove(request.getSessionId());
            if (open != null) {
                open.close();
                LOG.info("closed {}", open.session.name());
            }
            return Ack.getDefaultInstance();
        });
    }

    @Override
    public void health(HealthRequest request, StreamObserver<HealthResponse> reply) {
        call(reply, () -> HealthResponse.newBuilder()
                .setWorkerId(workerId)
                .setOpenSessions(sessions.size())
                .setUptimeMillis(System.currentTimeMillis() - startedAt)
                .putAllReceivedBytes(traffic.receivedBytes())
                .build());
    }

    int openSessions() {
        return sessions.size();
    }

    /**
     * The worker is asked to stop (SIGTERM), for an upgrade say: it opens no new session, and each open one
     * answers the inputs it has read and ends as stopped (its ring's closed flag, or its stream completed), which
     * tells the bridge to move it to a new worker without restarting the job. Returns how many were open.
     */
    int stopAsAsked() {
        stopping = true;
        List<Open> open = List.copyOf(sessions.values());
        open.forEach(Open::stopAsAsked);
        return open.size();
    }

    void closeAll() {
        sessions.values().forEach(Open::close);
        sessions.clear();
    }

    private WorkerSession session(String id) throws StatusException {
        return open(id).session;
    }

    private Open open(String id) throws StatusException {
        Open open = sessions.get(id);
        if (open == null) {
            throw Status.NOT_FOUND.withDescription("no open session " + id).asException();
        }
        return open;
    }

    /** An open session and the transport that serves its data: its ring loop (shm), or a gRPC stream. */
    private static final class Open {
        final WorkerSession session;
        final TransportKind transport;
        /** Set once the loop runs; it may end (and close the session) before. */
        volatile ShmSessionLoop ring;
        /** Ends the session's gRPC stream as stopped; set once the stream is attached. */
        volatile Runnable endStream;

        Open(WorkerSession session, TransportKind transport) {
            this.session = session;
            this.transport = transport;
        }

        void stopAsAsked() {
            ShmSessionLoop loop = ring;
            Runnable stream = endStream;
            try {
                if (loop != null) {
                    loop.stopAsAsked();
                } else if (stream != null) {
                    stream.run();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }

        /** Stops the data plane first, outside the session's monitor, which its thread may hold while it waits. */
        void close() {
            ShmSessionLoop loop = ring;
            if (loop != null) {
                try {
                    loop.close();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            session.close();
        }
    }

    /** Answers a unary call, turning any failure into a status whose description names the cause. */
    static <T> void call(StreamObserver<T> reply, Body<T> body) {
        T result;
        try {
            result = body.run();
        } catch (Exception e) {
            fail(reply, e);
            return;
        }
        reply.onNext(result);
        reply.onCompleted();
    }

    /** Ends a call with the status a failure carries, or INTERNAL naming the exception. */
    private static void fail(StreamObserver<?> reply, Exception e) {
        reply.onError(forBridge(e instanceof StatusException refused ? refused.getStatus()
                : Status.INTERNAL.withDescription(e.toString()).withCause(e)).asException());
    }

    /**
     * {@code status} with its description cut to what the bridge takes (docs/protocol.md, "Error texts"): a longer
     * one would fail the call as a transport error that hides it. The whole text is logged first; it names the
     * session, as every failure's description does.
     */
    private static Status forBridge(Status status) {
        String text = status.getDescription();
        if (text == null || ErrorTexts.encodedLength(text) <= ErrorTexts.MAX_BYTES) {
            return status;
        }
        LOG.warn("a {} status, cut for the bridge; its whole text: {}", status.getCode(), text);
        return status.withDescription(ErrorTexts.cut(text, ErrorTexts.MAX_BYTES));
    }

    @FunctionalInterface
    interface Body<T> {
        T run() throws Exception;
    }

    static String newWorkerId() {
        return "w" + UUID.randomUUID().toString().substring(0, 8);
    }
}
