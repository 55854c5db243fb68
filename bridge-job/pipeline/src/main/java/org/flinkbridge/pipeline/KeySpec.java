package org.flinkbridge.pipeline;

import java.io.Serializable;

/**
 * What to {@code keyBy} before the first segment: a top-level field of the JSON payload or a header.
 *
 * @param name the field or header name
 */
public record KeySpec(KeyKind kind, String name) implements Serializable {

    public KeySpec {
        if (kind == null) {
            throw new IllegalArgumentException("key kind must not be null");
        }
        Checks.nonBlank(name, "key " + kind.configName());
    }
}
