package org.flinkbridge.pipeline;

/**
 * How the {@code grpc} transport talks to the worker: {@code stream} (our batched bidirectional stream) or
 * {@code compat} (the prototype's unary {@code FlinkWorkerService}, one call per record).
 */
public enum GrpcMode {
    STREAM, COMPAT;

    /** The name in pipeline files and on the command line, e.g. {@code stream}. */
    public String configName() {
        return ConfigNames.of(this);
    }

    /**
     * Parses a lower-case name such as {@code stream} or {@code compat}.
     *
     * @throws IllegalArgumentException naming the allowed names
     */
    public static GrpcMode parse(String name) {
        return ConfigNames.parse(GrpcMode.class, name);
    }
}
