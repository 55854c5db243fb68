package org.flinkbridge.transport.shm;

import java.lang.foreign.MemorySegment;
import java.util.function.BooleanSupplier;

import static org.flinkbridge.transport.shm.RingLayout.CONSUMER_POSITION;
import static org.flinkbridge.transport.shm.RingLayout.CONSUMER_WAITING;
import static org.flinkbridge.transport.shm.RingLayout.DATA_FUTEX;
import static org.flinkbridge.transport.shm.RingLayout.PRODUCER_POSITION;
import static org.flinkbridge.transport.shm.RingLayout.PRODUCER_WAITING;
import static org.flinkbridge.transport.shm.RingLayout.SPACE_FUTEX;

/**
 * One ring's control block ({@link RingLayout}): the producer and consumer positions and the two futex words
 * with their waiting counts, each accessed with the ordering it needs. Publishing a position is a volatile
 * store followed by a wake of the other side if its count says it sleeps; a waiter re-checks with volatile
 * reads, so no wake-up is lost (see {@link WaitStrategy}).
 */
final class RingControl {

    private final MemorySegment control;
    private final MemorySegment dataFutex;
    private final MemorySegment consumerWaiting;
    private final MemorySegment spaceFutex;
    private final MemorySegment producerWaiting;

    RingControl(MemorySegment file, long offset) {
        this.control = file.asSlice(offset, 256);
        this.dataFutex = control.asSlice(DATA_FUTEX, 4);
        this.consumerWaiting = control.asSlice(CONSUMER_WAITING, 4);
        this.spaceFutex = control.asSlice(SPACE_FUTEX, 4);
        this.producerWaiting = control.asSlice(PRODUCER_WAITING, 4);
    }

    /** The producer position, for a consumer about to read what it covers. */
    long producerPosition() {
        return (long) Words.LONG.getAcquire(control, (long) PRODUCER_POSITION);
    }

    /** The producer position as a waiter re-checks it after announcing its wait. */
    long producerPositionForWait() {
        return (long) Words.LONG.getVolatile(control, (long) PRODUCER_POSITION);
    }

    /** Makes frames up to {@code position} visible, waking a consumer that sleeps. */
    void publishProducerPosition(long position) {
        Words.LONG.setVolatile(control, (long) PRODUCER_POSITION, position);
        WaitStrategy.wakeIfWaiting(dataFutex, consumerWaiting);
    }

    /** The consumer position, for a producer about to reuse the room it frees. */
    long consumerPosition() {
        return (long) Words.LONG.getAcquire(control, (long) CONSUMER_POSITION);
    }

    /** Bytes published and not yet released: how full the ring is, as an observer on any thread reads it. */
    long usedBytes() {
        long consumer = consumerPosition();
        return Math.max(0, producerPosition() - consumer);
    }

    /** The consumer position as a waiter re-checks it after announcing its wait. */
    long consumerPositionForWait() {
        return (long) Words.LONG.getVolatile(control, (long) CONSUMER_POSITION);
    }

    /** Frees the room up to {@code position}, waking a producer that sleeps. */
    void publishConsumerPosition(long position) {
        Words.LONG.setVolatile(control, (long) CONSUMER_POSITION, position);
        WaitStrategy.wakeIfWaiting(spaceFutex, producerWaiting);
    }

    void awaitFrames(WaitStrategy waiting, BooleanSupplier ready, long nanos) {
        waiting.await(ready, dataFutex, consumerWaiting, nanos);
    }

    void awaitSpace(WaitStrategy waiting, BooleanSupplier ready, long nanos) {
        waiting.await(ready, spaceFutex, producerWaiting, nanos);
    }

    /** Wakes whoever sleeps waiting for frames, so it looks again (at a closed flag, say). */
    void wakeFrameWaiters() {
        WaitStrategy.wakeIfWaiting(dataFutex, consumerWaiting);
    }

    /** Wakes whoever sleeps on this ring, so it looks again (at a closed flag, say). */
    void wakeSleepers() {
        wakeFrameWaiters();
        WaitStrategy.wakeIfWaiting(spaceFutex, producerWaiting);
    }
}
