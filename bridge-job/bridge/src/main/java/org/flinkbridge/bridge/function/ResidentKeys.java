package org.flinkbridge.bridge.function;

import com.google.protobuf.ByteString;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The keys whose cells a session's worker holds, least recently used first, each weighed in bytes (what its LOAD
 * carried, then what the worker says it holds after its writes, plus the key itself and {@value #PER_KEY_BYTES}
 * bytes for what holding a key costs either side), within a budget that barriers enforce: past it, a barrier names
 * the least recently used keys that no record touched since the previous barrier, which are clean once it is
 * answered and have nothing in flight (docs/protocol.md, "Cells"). Counting each key's own cost keeps this map's
 * heap within the budget too when there are millions of keys with a few bytes of cells each.
 */
final class ResidentKeys {

    /** About what a resident key costs on the bridge's heap (this map's entry) and in a worker's tables. */
    static final int PER_KEY_BYTES = 128;
    /** The most a listed key's framing takes: a 4-byte length on shm, a tag and a varint length in protobuf. */
    static final int LISTED_KEY_OVERHEAD = 8;

    private record Resident(String key, long bytes) {}

    private final long budgetBytes;
    /** Wire key → the key as the backend knows it and its weight; iterated least recently used first. */
    private final LinkedHashMap<ByteString, Resident> keys = new LinkedHashMap<>(16, 0.75f, true);
    private final Set<ByteString> touchedSinceBarrier = new HashSet<>();
    private long bytes;

    ResidentKeys(long budgetBytes) {
        this.budgetBytes = budgetBytes;
    }

    /** A record of {@code wireKey} goes to the worker: whether the key is resident (else it must be loaded first). */
    boolean touch(ByteString wireKey) {
        touchedSinceBarrier.add(wireKey);
        return keys.get(wireKey) != null;
    }

    /** The key was loaded into the worker with {@code loadedBytes} of cells. */
    void loaded(ByteString wireKey, String key, long loadedBytes) {
        long weight = weight(wireKey, loadedBytes);
        keys.put(wireKey, new Resident(key, weight));
        bytes += weight;
    }

    /** The key as the backend knows it, or null when it is not resident. */
    String key(ByteString wireKey) {
        Resident resident = keys.get(wireKey);
        return resident == null ? null : resident.key();
    }

    /** The worker holds {@code residentBytes} of the key's cells after its writes. */
    void weigh(ByteString wireKey, long residentBytes) {
        Resident resident = keys.get(wireKey);
        if (resident != null) {
            long weight = weight(wireKey, residentBytes);
            bytes += weight - resident.bytes();
            keys.put(wireKey, new Resident(resident.key(), weight));
        }
    }

    private static long weight(ByteString wireKey, long cellBytes) {
        return cellBytes + wireKey.size() + PER_KEY_BYTES;
    }

    /**
     * The keys a barrier sent now evicts, no longer resident from here on: past the budget, the least recently used
     * ones no record touched since the previous barrier, as many as fit in {@code maxListBytes} of the barrier's
     * frame (each key counted with {@value #LISTED_KEY_OVERHEAD} bytes of framing); the rest wait for the next one.
     */
    List<byte[]> evictAtBarrier(int maxListBytes) {
        List<byte[]> evicted = new ArrayList<>();
        long listBytes = 0;
        Iterator<Map.Entry<ByteString, Resident>> eldestFirst = keys.entrySet().iterator();
        while (bytes > budgetBytes && eldestFirst.hasNext()) {
            Map.Entry<ByteString, Resident> next = eldestFirst.next();
            if (!touchedSinceBarrier.contains(next.getKey())) {
                listBytes += next.getKey().size() + LISTED_KEY_OVERHEAD;
                if (listBytes > maxListBytes) {
                    break;
                }
                eldestFirst.remove();
                bytes -= next.getValue().bytes();
                evicted.add(next.getKey().toByteArray());
            }
        }
        touchedSinceBarrier.clear();
        return evicted;
    }

    /** A new session holds no key. */
    void clear() {
        keys.clear();
        touchedSinceBarrier.clear();
        bytes = 0;
    }

    int count() {
        return keys.size();
    }

    long bytes() {
        return bytes;
    }
}
