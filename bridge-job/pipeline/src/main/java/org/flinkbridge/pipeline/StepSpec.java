package org.flinkbridge.pipeline;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.flinkbridge.protocol.BuiltInStep;

import java.io.Serializable;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One step of application logic, run by the worker.
 *
 * @param name   unique within the pipeline
 * @param type   a built-in step type ({@link #BUILT_IN_TYPES}), a fully qualified class name, or
 *               {@link #WORKER_SEGMENT}
 * @param config JSON-like values (null, strings, booleans, numbers, lists, maps with string keys), kept in
 *               the file's order; the worker validates them
 * @param onError what a record the step fails on leads to
 */
public record StepSpec(String name, String type, Map<String, Object> config, OnError onError)
        implements Serializable {

    /**
     * The type of a step the file gives none (as sentry_streams writes its segments): the worker serves it with
     * its own segment of the step's segment id.
     */
    public static final String WORKER_SEGMENT = "";
    public static final List<String> BUILT_IN_TYPES = BuiltInStep.typeNames();

    private static final ObjectMapper JSON = new ObjectMapper();

    public StepSpec {
        Checks.nonBlank(name, "step name");
        if (type == null || !(isKnownType(type) || type.equals(WORKER_SEGMENT))) {
            throw new IllegalArgumentException("step " + name + ": type must be one of " + BUILT_IN_TYPES
                    + " or a class name containing a dot but was " + type);
        }
        config = freezeMap(config, name);
        if (onError == null) {
            throw new IllegalArgumentException("step " + name + ": on_error must not be null");
        }
    }

    /** A step whose failures fail the task (on_error: fail). */
    public StepSpec(String name, String type, Map<String, Object> config) {
        this(name, type, config, OnError.FAIL);
    }

    /** Whether this step certainly keeps no state: a built-in stateless step; a user step may keep some. */
    public boolean keepsNoState() {
        return BuiltInStep.find(type).map(BuiltInStep::keepsNoState).orElse(false);
    }

    /** Whether {@code type} names a built-in step or, containing a dot, a class for the worker to load. */
    public static boolean isKnownType(String type) {
        return BuiltInStep.find(type).isPresent() || type.contains(".");
    }

    /** The config as a JSON object, as the worker receives it. */
    public String configJson() {
        try {
            return JSON.writeValueAsString(config);
        } catch (JsonProcessingException e) {
            // Unreachable for the value types the constructor admits.
            throw new IllegalStateException("step " + name + ": cannot write its config as JSON", e);
        }
    }

    // Deep, order-preserving, null-tolerant copies (Map.copyOf rejects null values); the JDK's unmodifiable
    // wrappers of LinkedHashMap and ArrayList are serializable.
    private static Map<String, Object> freezeMap(Map<?, ?> map, String where) {
        Map<String, Object> copy = new LinkedHashMap<>();
        map.forEach((key, value) -> {
            if (!(key instanceof String k)) {
                throw new IllegalArgumentException("step config keys must be strings but " + where + " has " + key);
            }
            copy.put(k, freeze(value, where + "." + k));
        });
        return Collections.unmodifiableMap(copy);
    }

    private static Object freeze(Object value, String where) {
        if (value == null || value instanceof String || value instanceof Boolean || value instanceof Long
                || value instanceof Integer || value instanceof Double || value instanceof BigInteger
                || value instanceof BigDecimal) {
            return value;
        }
        if (value instanceof Map<?, ?> map) {
            return freezeMap(map, where);
        }
        if (value instanceof List<?> list) {
            List<Object> copy = new ArrayList<>(list.size());
            for (int i = 0; i < list.size(); i++) {
                copy.add(freeze(list.get(i), where + "[" + i + "]"));
            }
            return Collections.unmodifiableList(copy);
        }
        throw new IllegalArgumentException("step config values must be null, strings, booleans, numbers, lists or"
                + " maps but " + where + " is a " + value.getClass().getName());
    }
}
