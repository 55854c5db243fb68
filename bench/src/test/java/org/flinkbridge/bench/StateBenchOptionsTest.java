package org.flinkbridge.bench;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The RocksDB options the state benchmark takes ({@code --state-rocksdb}). */
class StateBenchOptionsTest {

    @Test
    void flinksRocksDbOptionsAreTakenInTheirOrder() {
        Map<String, String> options = StateBench.rocksDbOptions("state.backend.rocksdb.compaction.style=UNIVERSAL,"
                + " state.backend.rocksdb.compaction.level.max-size-level-base=16mb,"
                + "state.backend.rocksdb.memory.managed=false");
        assertEquals(List.of("state.backend.rocksdb.compaction.style",
                "state.backend.rocksdb.compaction.level.max-size-level-base", "state.backend.rocksdb.memory.managed"),
                List.copyOf(options.keySet()));
        assertEquals("16mb", options.get("state.backend.rocksdb.compaction.level.max-size-level-base"));
    }

    @Test
    void anUnknownKeyIsNamed() {
        IllegalArgumentException error = assertThrows(IllegalArgumentException.class,
                () -> StateBench.rocksDbOptions("state.backend.rocksdb.compaction.stile=UNIVERSAL"));
        assertTrue(error.getMessage().startsWith("unknown RocksDB option state.backend.rocksdb.compaction.stile;"),
                error.getMessage());
        assertTrue(error.getMessage().contains("state.backend.rocksdb.compaction.style"), error.getMessage());
    }

    @Test
    void aValueTheBackendRefusesIsNamedWithItsKey() {
        for (String option : List.of("state.backend.rocksdb.compaction.style=SIDEWAYS",
                "state.backend.rocksdb.compaction.level.target-file-size-base=0mb",
                "state.backend.rocksdb.writebuffer.count=-1", "state.backend.rocksdb.memory.managed=perhaps")) {
            IllegalArgumentException error = assertThrows(IllegalArgumentException.class,
                    () -> StateBench.rocksDbOptions(option));
            assertTrue(error.getMessage().startsWith("RocksDB option " + option + " refused: "), error.getMessage());
        }
    }

    @Test
    void anEntryThatIsNoPairOrAKeyGivenTwiceIsNamed() {
        assertEquals("'state.backend.rocksdb.compaction.style' is not KEY=VALUE", assertThrows(
                IllegalArgumentException.class,
                () -> StateBench.rocksDbOptions("state.backend.rocksdb.compaction.style")).getMessage());
        assertEquals("'' is not KEY=VALUE", assertThrows(IllegalArgumentException.class,
                () -> StateBench.rocksDbOptions("state.backend.rocksdb.compaction.style=LEVEL,")).getMessage());
        String twice = "state.backend.rocksdb.compaction.style=LEVEL,state.backend.rocksdb.compaction.style=UNIVERSAL";
        assertEquals("state.backend.rocksdb.compaction.style is given twice",
                assertThrows(IllegalArgumentException.class, () -> StateBench.rocksDbOptions(twice)).getMessage());
    }
}
