package org.flinkbridge.pipeline;

/**
 * Invariant checks for the model records, so that specs built in code are as valid as parsed ones. The
 * parser reports the same conditions earlier, with the place in the file.
 */
final class Checks {

    private Checks() {
    }

    static String nonBlank(String value, String what) {
        if (value == null || value.isBlank()) {
            throw new IllegalArgumentException(what + " must be a non-empty string but was " + quoted(value));
        }
        return value;
    }

    static long atLeast(long value, long min, String what) {
        if (value < min) {
            throw new IllegalArgumentException(what + " must be >= " + min + " but was " + value);
        }
        return value;
    }

    private static String quoted(String value) {
        return value == null ? "null" : "'" + value + "'";
    }
}
