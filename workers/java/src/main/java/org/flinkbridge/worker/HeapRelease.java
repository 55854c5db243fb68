package org.flinkbridge.worker;

/**
 * Gives the heap that a large eviction frees back to the system. An evicted key's cells become garbage in the old
 * generation, which the JVM collects only once that fills up: until then the heap keeps every page it grew to, and a
 * load that made every key resident once (a job's first pass over its keys, a restore) grew it to the whole state.
 * So when one session's barrier evicts cells of at least an eighth of the heap the JVM holds (a JVM serves every
 * session of its TaskManager, and each evicts its own keys), a full collection runs at once, and the heap shrinks as
 * far as the worker's JVM options let it ({@code flink-bridge.worker.jvm-options}: its default sets
 * {@code -XX:MaxHeapFreeRatio} and {@code -XX:-ShrinkHeapInSteps} for this). The evictions of a steady stream, about
 * the keys one checkpoint interval touches, stay below that and are left to the ordinary collections.
 */
final class HeapRelease {

    private static final int HEAP_SHARE = 8;

    private HeapRelease() {}

    /** A barrier's evictions freed about {@code bytes} of cells. */
    static void evicted(long bytes) {
        if (bytes > 0 && bytes >= Runtime.getRuntime().totalMemory() / HEAP_SHARE) {
            System.gc();
        }
    }
}
