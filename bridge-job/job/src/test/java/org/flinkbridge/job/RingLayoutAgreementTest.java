package org.flinkbridge.job;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.flinkbridge.protocol.FrameType;
import org.flinkbridge.transport.shm.RingLayout;
import org.junit.jupiter.api.Test;

import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.nio.charset.StandardCharsets;
import java.util.Iterator;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Python worker's ring layout (workers/python/flink_bridge/layout.py) agrees with the Java one ({@link RingLayout},
 * {@link FrameType}), constant by constant: every constant Python defines exists in Java under the same name with
 * the same value, and the frame header Python packs has Java's field offsets. (The C header is held to the Java
 * layout by the Java↔C tests in native/.)
 */
class RingLayoutAgreementTest {

    private static final String DUMP = """
            import json, struct, sys
            sys.path.insert(0, sys.argv[1])
            from flink_bridge import layout as L
            constants = {k: v for k, v in vars(L).items() if k.isupper() and type(v) is int}
            # The frame header's fields, as FRAME packs them: the offset of each in order.
            offsets = [struct.calcsize(L.FRAME.format[:i + 1]) - struct.calcsize(L.FRAME.format[i]) for i in range(1, 5)]
            print(json.dumps({"constants": constants, "frame_offsets": offsets, "frame_names": list(L.FRAME_NAMES)}))
            """;

    @Test
    void everyPythonConstantHasTheJavaValue() throws Exception {
        JsonNode python = dumpPythonLayout();
        Map<String, Long> java = javaConstants();

        Iterator<Map.Entry<String, JsonNode>> constants = python.get("constants").fields();
        int compared = 0;
        while (constants.hasNext()) {
            Map.Entry<String, JsonNode> constant = constants.next();
            assertTrue(java.containsKey(constant.getKey()), "Python's layout defines " + constant.getKey()
                    + ", which neither RingLayout nor FrameType has");
            assertEquals(java.get(constant.getKey()), constant.getValue().asLong(), constant.getKey());
            compared++;
        }
        assertTrue(compared >= 30, "only " + compared + " constants compared");
        assertEquals(java.get("FRAME_HEADER"), (long) RingLayout.FRAME_HEADER);
        assertEquals(java.get("FRAME_TYPE") + "," + java.get("FRAME_FLAGS") + "," + java.get("FRAME_SEQUENCE"),
                python.get("frame_offsets").get(1) + "," + python.get("frame_offsets").get(2) + ","
                        + python.get("frame_offsets").get(3));
        for (int type = 0; type < python.get("frame_names").size(); type++) {
            assertEquals(FrameType.name(type), python.get("frame_names").get(type).asText());
        }
        assertTrue(FrameType.name(python.get("frame_names").size()).startsWith("unknown"),
                "Java knows a frame type Python does not");
    }

    private static JsonNode dumpPythonLayout() throws Exception {
        Process dump = new ProcessBuilder(System.getProperty("flink-bridge.worker.python.executable"), "-c", DUMP,
                System.getProperty("flink-bridge.worker.python.runtime")).redirectErrorStream(true).start();
        String output = new String(dump.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(dump.waitFor(30, TimeUnit.SECONDS), output);
        assertEquals(0, dump.exitValue(), output);
        return new ObjectMapper().readTree(output);
    }

    /** Every public static int or long constant of RingLayout and FrameType, by name. */
    static Map<String, Long> javaConstants() {
        Map<String, Long> constants = new TreeMap<>();
        for (Class<?> type : new Class<?>[] {RingLayout.class, FrameType.class}) {
            for (Field field : type.getFields()) {
                if (Modifier.isStatic(field.getModifiers())
                        && (field.getType() == int.class || field.getType() == long.class)) {
                    try {
                        constants.put(field.getName(), ((Number) field.get(null)).longValue());
                    } catch (IllegalAccessException e) {
                        throw new AssertionError(field + " is public", e);
                    }
                }
            }
        }
        return constants;
    }
}
