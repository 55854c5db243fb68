package org.flinkbridge.pipeline;

/** What a sink promises about each record of the final stream across failures and restarts. */
public enum Delivery {
    /** Every record is written, some perhaps more than once after a restart. */
    AT_LEAST_ONCE,
    /** Every record is visible exactly once to readers of committed data; needs checkpointing. */
    EXACTLY_ONCE;

    /** The name in pipeline files, e.g. {@code exactly_once}. */
    public String configName() {
        return ConfigNames.of(this);
    }

    /**
     * Parses a lower-case name such as {@code at_least_once}.
     *
     * @throws IllegalArgumentException naming the allowed names
     */
    public static Delivery parse(String name) {
        return ConfigNames.parse(Delivery.class, name);
    }
}
