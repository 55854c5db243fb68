package org.flinkbridge.pipeline;

/**
 * How a session moves records: {@code shm} (shared-memory rings, gRPC for control only) or {@code grpc}
 * (records over gRPC too).
 */
public enum Transport {
    SHM, GRPC;

    /** The name in pipeline files and on the command line, e.g. {@code shm}. */
    public String configName() {
        return ConfigNames.of(this);
    }

    /**
     * Parses a lower-case name such as {@code shm} or {@code grpc}.
     *
     * @throws IllegalArgumentException naming the allowed names
     */
    public static Transport parse(String name) {
        return ConfigNames.parse(Transport.class, name);
    }
}
