package org.flinkbridge.worker.steps;

import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.Size;
import net.jqwik.api.constraints.StringLength;
import org.flinkbridge.protocol.StateStrings;

import java.io.IOException;
import java.util.HashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The counting steps' state codec: every state round-trips, and any bytes are read or refused as an IOException. */
class CountsStateProperties {

    @Property(tries = 500)
    void everyCountStateRoundTrips(@ForAll @Size(max = 50) Map<@StringLength(max = 100_000) String, Long> counts)
            throws IOException {
        Map<String, Long> restored = new HashMap<>();

        CountsState.read(CountsState.write(counts, StateStrings::write), restored, StateStrings::read, "test");

        assertEquals(counts, restored);
    }

    @Property(tries = 5_000)
    void anyBytesAreReadOrRefusedWithAnIoException(@ForAll @Size(max = 200) byte[] state) {
        try {
            CountsState.read(state, new HashMap<String, Long>(), StateStrings::read, "test");
        } catch (IOException refused) {
            // what a corrupt state must give
        }
    }
}
