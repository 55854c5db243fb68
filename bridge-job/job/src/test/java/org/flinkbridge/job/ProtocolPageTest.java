package org.flinkbridge.job;

import org.flinkbridge.proto.control.ProtocolVersion;
import org.flinkbridge.protocol.FrameType;
import org.flinkbridge.transport.shm.RingLayout;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * docs/protocol.md cannot drift from the code: every constant its layout tables and its text name has the
 * page's value in the Java definitions ({@link RingLayout}, {@link FrameType}, the protobuf enums) and in the
 * C header; and every constant of the Rust worker's layout has the Java value. (The Python layout is held to the
 * Java one by {@link RingLayoutAgreementTest}.)
 */
class ProtocolPageTest {

    /** A layout table row: {@code | offset | size | field | `CONSTANT` |}. */
    private static final Pattern LAYOUT_ROW = Pattern.compile("(?m)^\\| (\\d+) \\|[^|\\n]*\\|[^\\n]*\\| `([A-Z_]+)` \\|$");
    /** A value in the text: {@code `NAME` = 123} or {@code `NAME` = 0x1F}. */
    private static final Pattern NAMED_VALUE = Pattern.compile("`([A-Z_]+)` = (0x[0-9A-Fa-f]+|\\d+)");
    /** A frame type in the data plane's tables: {@code `RECORD` (1)}. */
    private static final Pattern FRAME_TYPE = Pattern.compile("`([A-Z_]+)` \\((\\d+)\\)");
    private static final Pattern C_ENUM = Pattern.compile("(FB_[A-Z0-9_]+)\\s*=\\s*(-?\\d+)");
    private static final Pattern C_DEFINE = Pattern.compile("#define (FB_[A-Z0-9_]+) (?:UINT64_C\\()?(0x[0-9A-Fa-f]+|\\d+)");

    /** A constant in the Rust worker's layout: {@code pub const NAME: u32 = 4096;} or {@code = 0x3130_474E_...;}. */
    private static final Pattern RUST_CONST = Pattern.compile("pub const ([A-Z_]+): \\w+ = (0x[0-9A-Fa-f_]+|[0-9_]+);");

    private final String page = read("docs/protocol.md");
    private final Map<String, Long> c = cConstants(read("native/include/flink_bridge_ring.h"));
    private final Map<String, Long> java = RingLayoutAgreementTest.javaConstants();

    @Test
    void everyLayoutTableRowHasTheJavaAndTheCValue() {
        List<String> checked = new ArrayList<>();
        for (Matcher row = LAYOUT_ROW.matcher(page); row.find(); ) {
            long offset = Long.parseLong(row.group(1));
            String name = row.group(2);
            assertEquals(offset, javaValue(name), name + " in RingLayout");
            assertEquals(offset, cValue(name), name + " in flink_bridge_ring.h");
            checked.add(name);
        }
        assertTrue(checked.size() >= 23, "only " + checked.size() + " layout rows found: " + checked);
    }

    @Test
    void everyValueTheTextNamesIsTheCodes() {
        Map<String, Long> named = new TreeMap<>();
        for (Matcher value = NAMED_VALUE.matcher(page); value.find(); ) {
            String name = value.group(1);
            long stated = Long.decode(value.group(2));
            named.put(name, stated);
            if (name.equals("PROTOCOL_VERSION_CURRENT")) {
                assertEquals(ProtocolVersion.PROTOCOL_VERSION_CURRENT_VALUE, stated, name);
                continue;
            }
            assertEquals(stated, javaValue(name), name + " in RingLayout");
            assertEquals(stated, cValue(name), name + " in flink_bridge_ring.h");
        }
        assertTrue(named.keySet().containsAll(List.of("PROTOCOL_VERSION_CURRENT", "NO_KEY_GROUP", "FRAME_ALIGNMENT",
                "HEADER_SIZE")), "values the page names: " + named);
    }

    @Test
    void everyFrameTypeHasItsNumberInJavaInCAndOnTheGrpcStream() {
        Map<String, Long> types = new TreeMap<>();
        for (Matcher type = FRAME_TYPE.matcher(page); type.find(); ) {
            String name = type.group(1);
            long number = Long.parseLong(type.group(2));
            types.put(name, number);
            assertEquals(number, java.get(name), name + " in FrameType");
            assertEquals(number, c.get("FB_FRAME_" + name), name + " in flink_bridge_ring.h");
            if (!name.equals("PADDING")) {
                assertEquals(number, org.flinkbridge.proto.data.FrameType.valueOf(name).getNumber(),
                        name + " in bridge_data.proto");
            }
        }
        assertEquals(List.of("BARRIER", "CELL_WRITES", "CLOCK", "END_OF_OUTPUTS", "ERROR", "INPUT_FAILED", "LOAD", "OUTPUT",
                        "PADDING", "RECORD", "TIMER", "TIMERS", "WATERMARK"),
                List.copyOf(types.keySet()), "frame types the page numbers");
    }

    @Test
    void everyConstantOfTheRustLayoutHasTheJavaValue() {
        Map<String, Long> rust = new TreeMap<>();
        for (Matcher constant = RUST_CONST.matcher(read("workers/rust/src/layout.rs")); constant.find(); ) {
            String name = constant.group(1);
            long value = Long.parseUnsignedLong(constant.group(2).replace("_", "").replaceFirst("^0x", ""),
                    constant.group(2).startsWith("0x") ? 16 : 10);
            rust.put(name, value);
            assertEquals(javaValue(name), value, name + " in workers/rust/src/layout.rs");
        }
        assertTrue(rust.keySet().containsAll(List.of("MAGIC", "CLOSED_OFFSET", "CLOSED_STOPPED", "SPACE_FUTEX", "CLOCK",
                "NO_KEY_GROUP")), "constants found in layout.rs: " + rust);
    }

    private long javaValue(String name) {
        Long value = java.get(name);
        assertTrue(value != null, "the page names " + name + ", which neither RingLayout nor FrameType defines");
        return value;
    }

    /** The C name of a Java constant: FB_RING_ + it for the ring, FB_ + it for a frame field. */
    private long cValue(String name) {
        for (String candidate : List.of("FB_RING_" + name, "FB_" + name, "FB_" + name + "_SIZE")) {
            if (c.containsKey(candidate)) {
                return c.get(candidate);
            }
        }
        throw new AssertionError("the page names " + name + ", which flink_bridge_ring.h does not define");
    }

    private static Map<String, Long> cConstants(String header) {
        Map<String, Long> constants = new TreeMap<>();
        for (Pattern pattern : List.of(C_ENUM, C_DEFINE)) {
            for (Matcher constant = pattern.matcher(header); constant.find(); ) {
                constants.put(constant.group(1), Long.decode(constant.group(2)));
            }
        }
        return constants;
    }

    private static String read(String path) {
        try {
            return Files.readString(Path.of(System.getProperty("flink-bridge.home"), path));
        } catch (java.io.IOException e) {
            throw new AssertionError("cannot read " + path, e);
        }
    }
}
