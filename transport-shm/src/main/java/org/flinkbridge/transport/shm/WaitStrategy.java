package org.flinkbridge.transport.shm;

import java.lang.foreign.MemorySegment;
import java.util.function.BooleanSupplier;

/**
 * Waiting on a ring: spin briefly (a busy peer answers within microseconds), then announce the wait in the
 * shared header and sleep on a futex word, so an idle session costs no CPU while a busy one makes no system
 * calls. The peer wakes a sleeper only when its flag says it sleeps.
 *
 * <p>No wake-up is lost: the sleeper sets its flag and then re-checks the ring; the peer publishes and
 * then reads the flag. Both are volatile accesses, so one of them sees the other.
 */
final class WaitStrategy {

    private final int spins;
    private final Futex futex = new Futex();

    WaitStrategy(int spins) {
        this.spins = spins;
    }

    /**
     * Waits until {@code ready} holds or about {@code nanos} passed.
     *
     * @param futexWord the word the peer bumps before waking
     * @param flag the word that tells the peer this side sleeps
     */
    void await(BooleanSupplier ready, MemorySegment futexWord, MemorySegment flag, long nanos) {
        for (int i = 0; i < spins; i++) {
            if (ready.getAsBoolean()) {
                return;
            }
            Thread.onSpinWait();
        }
        int ticket = (int) Words.INT.getVolatile(futexWord, 0L);
        Words.INT.setVolatile(flag, 0L, 1);
        try {
            if (!ready.getAsBoolean()) {
                futex.await(futexWord, ticket, nanos);
            }
        } finally {
            Words.INT.setVolatile(flag, 0L, 0);
        }
    }

    /** The peer's side: wakes the sleeper if its flag says it sleeps. */
    static void wakeIfWaiting(MemorySegment futexWord, MemorySegment flag) {
        if ((int) Words.INT.getVolatile(flag, 0L) != 0) {
            Words.INT.getAndAdd(futexWord, 0L, 1);
            Futex.wakeAll(futexWord);
        }
    }
}
