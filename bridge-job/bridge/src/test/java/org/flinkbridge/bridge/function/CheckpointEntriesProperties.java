package org.flinkbridge.bridge.function;

import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.Size;
import net.jqwik.api.constraints.StringLength;

import java.io.IOException;
import java.util.List;
import java.util.Map;
import org.flinkbridge.records.BridgeRecord;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** The bridge's checkpoint entries: every held output round-trips, and any bytes are read or an IOException. */
class CheckpointEntriesProperties {

    @Property(tries = 500)
    void everyHeldOutputRoundTrips(@ForAll long timestamp,
                                   @ForAll @Size(max = 10) Map<@StringLength(max = 70_000) String, String> headers,
                                   @ForAll @Size(max = 5_000) byte[] payload,
                                   @ForAll @IntRange(min = 0, max = 7) int subtask) throws IOException {
        BridgeRecord output = new BridgeRecord(payload, headers, timestamp);

        List<BridgeRecord> restored = CheckpointEntries.select(List.of(CheckpointEntries.output(subtask, output)),
                subtask, 8, 128).outputs();

        assertEquals(1, restored.size());
        assertEquals(headers, restored.getFirst().headers);
        assertArrayEquals(payload, restored.getFirst().payload);
        assertEquals(timestamp, restored.getFirst().timestamp);
    }

    @Property(tries = 5_000)
    void anyEntryIsReadOrRefusedWithAnIoException(@ForAll @Size(max = 200) byte[] entry) {
        try {
            CheckpointEntries.select(List.of(entry), 0, 1, 128);
        } catch (IOException refused) {
            // what a corrupt entry must give
        }
    }
}
