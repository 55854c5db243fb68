package org.flinkbridge.pipeline;

/** Where a Kafka source starts reading when it has no checkpointed position. */
public enum StartingOffsets {
    EARLIEST, LATEST, COMMITTED;

    /** The name in pipeline files and on the command line, e.g. {@code earliest}. */
    public String configName() {
        return ConfigNames.of(this);
    }

    /**
     * Parses a lower-case name such as {@code earliest} or {@code latest}.
     *
     * @throws IllegalArgumentException naming the allowed names
     */
    public static StartingOffsets parse(String name) {
        return ConfigNames.parse(StartingOffsets.class, name);
    }
}
