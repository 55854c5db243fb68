package org.flinkbridge.bridge.journal;

/**
 * Where a {@link ReplayJournal}'s memory is counted: the journal reserves the bytes its log grows by before it
 * allocates them, and releases what it held when it gives the log back (on overflow, and at close). The journal's
 * bound is the smaller of its own and {@link #limitBytes()}; a refused reservation makes it overflow there.
 */
public interface JournalMemory {

    /** Counts nothing and refuses nothing: the journal's own bound alone. */
    JournalMemory UNCOUNTED = new JournalMemory() {
        @Override
        public long limitBytes() {
            return Long.MAX_VALUE;
        }

        @Override
        public boolean reserve(long bytes) {
            return true;
        }

        @Override
        public void release(long bytes) {}
    };

    /** The most the journal may hold here. */
    long limitBytes();

    /** Counts {@code bytes} more; false when they cannot be had, and then nothing was counted. */
    boolean reserve(long bytes);

    /** Counts {@code bytes} fewer, of those reserved. */
    void release(long bytes);
}
