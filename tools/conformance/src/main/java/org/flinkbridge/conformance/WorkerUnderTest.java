package org.flinkbridge.conformance;

import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import org.flinkbridge.proto.control.BridgeControlGrpc;
import org.flinkbridge.proto.control.HealthRequest;
import org.flinkbridge.proto.control.HealthResponse;
import org.flinkbridge.proto.control.KeyGroupState;
import org.flinkbridge.proto.control.OpenSessionRequest;
import org.flinkbridge.proto.control.OpenSessionResponse;
import org.flinkbridge.proto.control.ProtocolVersion;
import org.flinkbridge.proto.control.SessionIdentity;
import org.flinkbridge.proto.control.SessionRef;
import org.flinkbridge.proto.control.ShmRing;
import org.flinkbridge.proto.control.SnapshotStateRequest;
import org.flinkbridge.proto.control.StepSpec;
import org.flinkbridge.proto.control.TransportKind;
import org.flinkbridge.protocol.KeyGroups;
import org.flinkbridge.protocol.SessionTokens;
import org.flinkbridge.protocol.WorkerLaunch;
import org.flinkbridge.transport.grpc.ControlSecret;
import org.flinkbridge.transport.grpc.GrpcChannels;
import org.flinkbridge.transport.grpc.StatePieces;
import org.flinkbridge.transport.shm.RingFile;
import org.flinkbridge.transport.shm.RingFiles;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A worker the kit talks to as a bridge does: over its control service (authenticated with the ring
 * directory's secret) and the data plane of each session it opens.
 */
final class WorkerUnderTest implements AutoCloseable {

    static final long CALL_TIMEOUT_MILLIS = 30_000;
    /** The start-up time a worker is given to print its listening line. */
    private static final long START_TIMEOUT_MILLIS = 60_000;
    private static final int RING_CAPACITY = 1 << 16;
    private static final int OUTPUT_LINES_KEPT = 40;

    private final Process process;
    private final String address;
    private final Path ringDirectory;
    private final ManagedChannel channel;
    /** The worker's last lines of output, kept for a failure's report. */
    private final Deque<String> lastOutput;

    private WorkerUnderTest(Process process, String address, Path ringDirectory, Deque<String> lastOutput)
            throws IOException {
        this.process = process;
        this.address = address;
        this.ringDirectory = ringDirectory;
        this.lastOutput = lastOutput;
        this.channel = GrpcChannels.open(address, ControlSecret.forDirectory(ringDirectory));
    }

    /** Starts the worker as a TaskManager spawns one (docs/protocol.md, "Launch and lifetime"). */
    static WorkerUnderTest start(List<String> command, Path ringDirectory, boolean echo) throws IOException {
        Deque<String> output = new ArrayDeque<>();
        WorkerLaunch.Started started = WorkerLaunch.start(command, START_TIMEOUT_MILLIS, (line, pid) -> {
            if (echo) {
                System.err.println("[worker " + pid + "] " + line);
            }
            synchronized (output) {
                output.addLast(line);
                if (output.size() > OUTPUT_LINES_KEPT) {
                    output.removeFirst();
                }
            }
        });
        return new WorkerUnderTest(started.process(), started.address(), ringDirectory, output);
    }

    /** A worker that runs already, at {@code address}. */
    static WorkerUnderTest at(String address, Path ringDirectory) throws IOException {
        return new WorkerUnderTest(null, address, ringDirectory, new ArrayDeque<>());
    }

    String address() {
        return address;
    }

    Path ringDirectory() {
        return ringDirectory;
    }

    /** Why the worker process is gone, or null while it runs (or when the kit did not start it). */
    String exited() {
        return process == null || process.isAlive() ? null
                : "the worker process " + process.pid() + " exited with code " + process.exitValue();
    }

    /** Sends {@code signal} (TERM, KILL...) to the worker process the kit started. */
    void signal(String signal) throws IOException, InterruptedException {
        new ProcessBuilder("kill", "-" + signal, Long.toString(process.pid())).start().waitFor();
    }

    /** Whether the worker process the kit started ended within the time given. */
    boolean awaitExit(long timeout, TimeUnit unit) throws InterruptedException {
        return process.waitFor(timeout, unit);
    }

    BridgeControlGrpc.BridgeControlBlockingStub control() {
        return BridgeControlGrpc.newBlockingStub(channel).withDeadlineAfter(CALL_TIMEOUT_MILLIS, TimeUnit.MILLISECONDS);
    }

    HealthResponse health() {
        return control().health(HealthRequest.getDefaultInstance());
    }

    /** An open session: its id, its data plane, its ring file (null over gRPC) and what OpenSession answered. */
    record Session(String id, DataPath data, Path ring, OpenSessionResponse opened) implements AutoCloseable {
        @Override
        public void close() {
            data.close();
        }
    }

    /** A session as the bridge's subtask {@code subtask} of {@code parallelism} opens it, not keyed. */
    Session open(KitTransport transport, List<StepSpec> steps, int subtask, int parallelism) throws IOException {
        return open(transport, steps, subtask, parallelism, false);
    }

    /**
     * A session as the bridge's subtask {@code subtask} of {@code parallelism} opens it.
     *
     * @param keyed its records carry their keys ({@code OpenSessionRequest.keyed}): its steps may keep cells
     */
    Session open(KitTransport transport, List<StepSpec> steps, int subtask, int parallelism, boolean keyed)
            throws IOException {
        String token = SessionTokens.random();
        OpenSessionRequest.Builder request = request(steps, subtask, parallelism).setToken(token)
                .setTransport(transport.kind).setKeyed(keyed);
        RingFile ring = null;
        try {
            if (transport == KitTransport.SHM) {
                ring = RingFile.create(RingFiles.newSessionPath(ringDirectory),
                        RING_CAPACITY, RING_CAPACITY, token);
                request.setRing(ShmRing.newBuilder().setPath(ring.path().toString())
                        .setToWorkerCapacity(RING_CAPACITY).setFromWorkerCapacity(RING_CAPACITY)
                        .setLivenessTimeoutMs((int) ShmPath.LIVENESS_MILLIS));
            }
            OpenSessionResponse opened = control().openSession(request.build());
            DataPath data = ring != null ? new ShmPath(ring) : new StreamPath(channel, opened.getSessionId(), token);
            return new Session(opened.getSessionId(), data, ring != null ? ring.path() : null, opened);
        } catch (IOException | RuntimeException e) {
            if (ring != null) {
                ring.close();
            }
            throw e;
        }
    }

    /** An OpenSession request of the current version for {@code steps}, without transport or token. */
    static OpenSessionRequest.Builder request(List<StepSpec> steps, int subtask, int parallelism) {
        return OpenSessionRequest.newBuilder()
                .setProtocolVersion(ProtocolVersion.PROTOCOL_VERSION_CURRENT)
                .setIdentity(SessionIdentity.newBuilder().setJobName("conformance").setOperatorName("kit")
                        .setSubtaskIndex(subtask).setParallelism(parallelism).setAttempt(0))
                .setSegmentId(0)
                .addAllSteps(steps);
    }

    List<KeyGroupState> snapshot(String sessionId, long checkpointId) {
        List<KeyGroupState> pieces = new ArrayList<>();
        control().snapshotState(SnapshotStateRequest.newBuilder().setSessionId(sessionId)
                .setCheckpointId(checkpointId).build()).forEachRemaining(m -> pieces.addAll(m.getStatesList()));
        return pieces;
    }

    /** Hands the session its state, in pieces; a refusal is the worker's status as a StatusRuntimeException. */
    void restore(String sessionId, List<KeyGroupState> pieces) throws IOException {
        try {
            StatePieces.restore(channel, sessionId, pieces, CALL_TIMEOUT_MILLIS);
        } catch (TimeoutException e) {
            throw new IOException("the worker took no state: " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
    }

    /**
     * A session whose data plane is known to be up: one record has been answered over it (over gRPC, its stream
     * has reached the worker).
     */
    Session openAnswered(KitTransport transport) throws IOException {
        Session session = open(transport, List.of(ContractPoints.MARK), 0, 1);
        try {
            session.data().record(0, KeyGroups.NONE, ContractPoints.input(0));
            session.data().answersThrough(0, CALL_TIMEOUT_MILLIS);
            return session;
        } catch (IOException | RuntimeException e) {
            session.close();
            throw e;
        }
    }

    void closeSession(String sessionId) {
        control().closeSession(SessionRef.newBuilder().setSessionId(sessionId).build());
    }

    /** Ends a session, which may have failed (the worker acknowledges a close either way). */
    void closeQuietly(Session session) {
        try (session) {
            closeSession(session.id());
        } catch (StatusRuntimeException e) {
            // A session the worker ended itself may be gone already.
        }
    }

    String lastOutput() {
        synchronized (lastOutput) {
            return String.join("\n", lastOutput);
        }
    }

    @Override
    public void close() {
        GrpcChannels.close(channel);
        if (process != null) {
            WorkerLaunch.stop(process);
        }
    }

    /** The data planes a worker may serve, as OpenSession names them. */
    enum KitTransport {
        SHM("shm", TransportKind.TRANSPORT_KIND_SHM),
        GRPC("grpc", TransportKind.TRANSPORT_KIND_GRPC);

        final String flag;
        final TransportKind kind;

        KitTransport(String flag, TransportKind kind) {
            this.flag = flag;
            this.kind = kind;
        }

        static KitTransport parse(String flag) {
            for (KitTransport transport : values()) {
                if (transport.flag.equals(flag)) {
                    return transport;
                }
            }
            throw new IllegalArgumentException("--transport must be shm or grpc, not '" + flag + "'");
        }
    }
}
