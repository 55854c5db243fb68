package org.flinkbridge.pipeline;

/** Where the key for {@code keyBy} comes from: a top-level field of the JSON payload or a record header. */
public enum KeyKind {
    JSON_FIELD, HEADER;

    /** The name in pipeline files and on the command line, e.g. {@code json_field}. */
    public String configName() {
        return ConfigNames.of(this);
    }

    /**
     * Parses a lower-case name such as {@code json_field} or {@code header}.
     *
     * @throws IllegalArgumentException naming the allowed names
     */
    public static KeyKind parse(String name) {
        return ConfigNames.parse(KeyKind.class, name);
    }
}
