package org.flinkbridge.pipeline;

/**
 * How a session moves records, chosen once from the transport and gRPC mode the file or the command line gives,
 * and carried as this one value to the worker: shared-memory rings, the streamed gRPC data plane, or the
 * prototype's unary gRPC service. Shared memory with the prototype's service cannot be chosen.
 */
public enum TransportMode {
    /** Records through two shared-memory rings; gRPC for control only. */
    SHM(Transport.SHM, null),
    /** Batched frames over one bidirectional gRPC stream per session. */
    GRPC_STREAM(Transport.GRPC, GrpcMode.STREAM),
    /** The prototype's unary FlinkWorkerService, one call per input. */
    GRPC_COMPAT(Transport.GRPC, GrpcMode.COMPAT);

    private final Transport transport;
    private final GrpcMode grpcMode;

    TransportMode(Transport transport, GrpcMode grpcMode) {
        this.transport = transport;
        this.grpcMode = grpcMode;
    }

    public Transport transport() {
        return transport;
    }

    /** How the gRPC transport talks to the worker; null over shared memory. */
    public GrpcMode grpcMode() {
        return grpcMode;
    }

    /**
     * Whether the worker keeps its state in sessions whose state goes into Flink's checkpoints. The prototype's
     * unary service has no sessions, no checkpoint barriers and keeps the worker's state to itself.
     */
    public boolean checkpointsWorkerState() {
        return this != GRPC_COMPAT;
    }

    /** Whether the worker must serve the prototype's unary service, which not every worker does. */
    public boolean needsPrototypeService() {
        return this == GRPC_COMPAT;
    }

    /** As the run's summary names it: {@code shm}, {@code grpc (stream)}, {@code grpc (compat)}. */
    public String describe() {
        return grpcMode == null ? transport.configName() : transport.configName() + " (" + grpcMode.configName() + ")";
    }

    /**
     * The mode of a transport and a gRPC mode as written.
     *
     * @param grpcMode null for the default, {@code stream}
     * @throws IllegalArgumentException for {@code shm} with {@code compat}, naming why
     */
    public static TransportMode of(Transport transport, GrpcMode grpcMode) {
        if (transport == Transport.SHM) {
            if (grpcMode == GrpcMode.COMPAT) {
                throw new IllegalArgumentException("grpc mode compat is the prototype's unary gRPC service: it needs"
                        + " transport grpc, not shm");
            }
            return SHM;
        }
        return grpcMode == GrpcMode.COMPAT ? GRPC_COMPAT : GRPC_STREAM;
    }

    /**
     * This mode with the command line's choices, each null when not given. A transport given without a gRPC mode
     * keeps this mode's gRPC mode only if it is this mode's transport: {@code --transport=shm} on a file that says
     * {@code grpc_mode: compat} means shared memory.
     */
    public TransportMode override(Transport newTransport, GrpcMode newGrpcMode) {
        Transport chosen = newTransport != null ? newTransport : transport;
        GrpcMode mode = newGrpcMode != null ? newGrpcMode : chosen == transport ? grpcMode : null;
        return of(chosen, mode);
    }
}
