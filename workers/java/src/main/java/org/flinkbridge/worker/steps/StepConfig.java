package org.flinkbridge.worker.steps;

import com.fasterxml.jackson.databind.JsonNode;
import org.flinkbridge.worker.sdk.StepContext;

/** Typed reads of a step's config block, with errors that name the step, the key and what is expected. */
final class StepConfig {

    private final StepContext context;

    StepConfig(StepContext context) {
        this.context = context;
        if (!context.config().isObject()) {
            throw invalid("config", "an object", context.config());
        }
    }

    String string(String key, String fallback) {
        JsonNode value = context.config().get(key);
        if (value == null || value.isNull()) {
            return fallback;
        }
        if (!value.isTextual()) {
            throw invalid(key, "a string", value);
        }
        return value.textValue();
    }

    long positiveLong(String key, long fallback) {
        return wholeNumber(key, fallback, 1);
    }

    long nonNegativeLong(String key, long fallback) {
        return wholeNumber(key, fallback, 0);
    }

    /** A whole number of at least {@code min} that fits 64 bits; {@code fallback} when the key is absent or null. */
    private long wholeNumber(String key, long fallback, long min) {
        JsonNode value = context.config().get(key);
        if (value == null || value.isNull()) {
            return fallback;
        }
        if (!value.canConvertToExactIntegral() || !value.canConvertToLong() || value.longValue() < min) {
            throw invalid(key, "a whole number >= " + min, value);
        }
        return value.longValue();
    }

    boolean bool(String key, boolean fallback) {
        JsonNode value = context.config().get(key);
        if (value == null || value.isNull()) {
            return fallback;
        }
        if (!value.isBoolean()) {
            throw invalid(key, "true or false", value);
        }
        return value.booleanValue();
    }

    JsonNode node(String key, JsonNode fallback) {
        JsonNode value = context.config().get(key);
        return value == null ? fallback : value;
    }

    IllegalArgumentException invalid(String key, String expected, JsonNode found) {
        return new IllegalArgumentException("step '" + context.stepName() + "': config " + key + " must be "
                + expected + ", not " + found);
    }
}
