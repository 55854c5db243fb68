package org.flinkbridge.transport.shm;

import java.lang.foreign.MemorySegment;
import java.util.function.BooleanSupplier;

/**
 * Waiting on a ring: spin briefly (a busy peer answers within microseconds), then count this thread in the
 * shared header's waiting count and sleep on a futex word, so an idle session costs no CPU while a busy one
 * makes no system calls. The peer wakes sleepers only when the count says there are any.
 *
 * <p>No wake-up is lost: the sleeper counts itself and then re-checks the ring; the peer publishes and
 * then reads the count. All are volatile accesses, so one of them sees the other. A count, not a flag,
 * because two threads of one side may sleep on the same futex (a consumer and a {@link RingWatch}).
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
     * @param waiting the word that counts this side's sleepers for the peer
     */
    void await(BooleanSupplier ready, MemorySegment futexWord, MemorySegment waiting, long nanos) {
        for (int i = 0; i < spins; i++) {
            if (ready.getAsBoolean()) {
                return;
            }
            Thread.onSpinWait();
        }
        int ticket = (int) Words.INT.getVolatile(futexWord, 0L);
        Words.INT.getAndAdd(waiting, 0L, 1);
        try {
            if (!ready.getAsBoolean()) {
                futex.await(futexWord, ticket, nanos);
            }
        } finally {
            Words.INT.getAndAdd(waiting, 0L, -1);
        }
    }

    /** The peer's side: wakes the sleepers if the count says there are any. */
    static void wakeIfWaiting(MemorySegment futexWord, MemorySegment waiting) {
        if ((int) Words.INT.getVolatile(waiting, 0L) != 0) {
            Words.INT.getAndAdd(futexWord, 0L, 1);
            Futex.wakeAll(futexWord);
        }
    }
}
