package org.flinkbridge.bridge.session;

import org.flinkbridge.pipeline.TransportMode;
import org.flinkbridge.proto.control.StepSpec;

import java.io.IOException;
import java.util.List;
import java.util.Map;

/**
 * How a session moves records, as one strategy per transport on the bridge side: how the session is opened on the
 * worker and what its data channel is, which of the control service's session calls (snapshot, restore, notify,
 * close) it has, and whether a lost worker can be replaced in place. Chosen once from the pipeline's
 * {@link TransportMode}; nothing outside the strategies asks which transport a session uses.
 */
public interface SessionTransport {

    /** The strategy of {@code mode}. */
    static SessionTransport of(TransportMode mode) {
        return switch (mode) {
            case SHM -> ShmTransport.INSTANCE;
            case GRPC_STREAM -> GrpcStreamTransport.INSTANCE;
            case GRPC_COMPAT -> CompatTransport.INSTANCE;
        };
    }

    /**
     * Opens the session on the worker {@code opening} reaches, with its data channel.
     *
     * @throws org.flinkbridge.protocol.WorkerLostException when the worker cannot be reached or does not answer
     */
    TransportSession open(SessionOpening opening) throws IOException;

    /**
     * Whether a lost worker can be replaced without failing the task: the bridge must be able to hand a new worker
     * the state of the last barrier, so the session's state must be in the bridge's hands.
     */
    boolean recoversInPlace();

    /**
     * What a spawned worker's command line must add for this transport, given every segment's steps by segment id
     * (a transport whose sessions carry their steps needs nothing).
     */
    default List<String> spawnArguments(Map<Integer, List<StepSpec>> segments) {
        return List.of();
    }
}
