package org.flinkbridge.transport.shm;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.flinkbridge.transport.shm.RingLayout.CONSUMER_POSITION;
import static org.flinkbridge.transport.shm.RingLayout.CONSUMER_WAITING;
import static org.flinkbridge.transport.shm.RingLayout.DATA_FUTEX;
import static org.flinkbridge.transport.shm.RingLayout.FRAME_FLAGS;
import static org.flinkbridge.transport.shm.RingLayout.FRAME_HEADER;
import static org.flinkbridge.transport.shm.RingLayout.FRAME_LENGTH;
import static org.flinkbridge.transport.shm.RingLayout.FRAME_SEQUENCE;
import static org.flinkbridge.transport.shm.RingLayout.FRAME_TYPE;
import static org.flinkbridge.transport.shm.RingLayout.PRODUCER_POSITION;
import static org.flinkbridge.transport.shm.RingLayout.PRODUCER_WAITING;
import static org.flinkbridge.transport.shm.RingLayout.SPACE_FUTEX;

/**
 * The writing side of one ring (single producer). Frames are claimed and written in place; the producer
 * position is published only by {@link #publish}, so a batch of frames costs one release store (and a wake
 * only if the consumer sleeps). Nothing here allocates.
 */
public final class RingProducer {

    private final MemorySegment file;
    private final long data;
    private final int capacity;
    private final int mask;
    private final int maxFrame;
    private final MemorySegment control;
    private final MemorySegment dataFutex;
    private final MemorySegment consumerWaiting;
    private final MemorySegment spaceFutex;
    private final MemorySegment producerWaiting;
    private final WaitStrategy waiting;
    private final String name;
    private long tail;
    private long published;
    private long cachedHead;

    RingProducer(MemorySegment file, long controlOffset, long dataOffset, int capacity, WaitStrategy waiting,
                 String name) {
        this.file = file;
        this.data = dataOffset;
        this.capacity = capacity;
        this.mask = capacity - 1;
        this.maxFrame = RingLayout.maxFrameLength(capacity);
        this.control = file.asSlice(controlOffset, 256);
        this.dataFutex = control.asSlice(DATA_FUTEX, 4);
        this.consumerWaiting = control.asSlice(CONSUMER_WAITING, 4);
        this.spaceFutex = control.asSlice(SPACE_FUTEX, 4);
        this.producerWaiting = control.asSlice(PRODUCER_WAITING, 4);
        this.waiting = waiting;
        this.name = name;
        this.tail = (long) Words.LONG.getVolatile(control, (long) PRODUCER_POSITION);
        this.published = tail;
        this.cachedHead = (long) Words.LONG.getVolatile(control, (long) CONSUMER_POSITION);
    }

    /**
     * Claims a frame with a body of {@code bodyLength} bytes and writes its header.
     *
     * @return the file offset where the body goes, or -1 when the ring has no room now
     * @throws RingException when the frame is larger than this ring can ever hold
     */
    public long tryClaim(int type, long sequence, int bodyLength) throws RingException {
        return tryClaim(type, 0, sequence, bodyLength);
    }

    /** {@link #tryClaim(int, long, int)} for a frame whose flags carry something ({@link RingLayout}). */
    public long tryClaim(int type, int flags, long sequence, int bodyLength) throws RingException {
        if (bodyLength < 0 || bodyLength > maxFrame - FRAME_HEADER) {
            throw new RingException(name + ": a " + FrameType.name(type) + " frame of " + (FRAME_HEADER + (long) bodyLength)
                    + " bytes does not fit: frames are at most " + maxFrame + " bytes, half the ring's capacity of "
                    + capacity + "; give the session larger rings");
        }
        int length = FRAME_HEADER + bodyLength;
        int aligned = RingLayout.align(length);
        int index = (int) (tail & mask);
        int toEnd = capacity - index;
        int padding = aligned > toEnd ? toEnd : 0;
        long needed = tail + padding + aligned;
        if (needed - cachedHead > capacity) {
            cachedHead = (long) Words.LONG.getAcquire(control, (long) CONSUMER_POSITION);
            if (needed - cachedHead > capacity) {
                return -1;
            }
        }
        if (padding > 0) {
            // The gap may be only 8 bytes: a PADDING frame is just its length, type and flags.
            writeTypeAndLength(index, padding, FrameType.PADDING);
            tail += padding;
            index = 0;
        }
        writeTypeAndLength(index, length, type);
        file.set(ValueLayout.JAVA_SHORT, data + index + FRAME_FLAGS, (short) flags);
        file.set(ValueLayout.JAVA_LONG, data + index + FRAME_SEQUENCE, sequence);
        tail += aligned;
        return data + index + FRAME_HEADER;
    }

    private void writeTypeAndLength(int index, int length, int type) {
        long at = data + index;
        file.set(ValueLayout.JAVA_INT, at + FRAME_LENGTH, length);
        file.set(ValueLayout.JAVA_SHORT, at + FRAME_TYPE, (short) type);
        file.set(ValueLayout.JAVA_SHORT, at + FRAME_FLAGS, (short) 0);
    }

    /** The mapped file, for writing claimed bodies. */
    public MemorySegment segment() {
        return file;
    }

    /** Makes every claimed frame visible to the consumer, waking it if it sleeps. */
    public void publish() {
        if (tail == published) {
            return;
        }
        Words.LONG.setVolatile(control, (long) PRODUCER_POSITION, tail);
        published = tail;
        WaitStrategy.wakeIfWaiting(dataFutex, consumerWaiting);
    }

    /** Publishes, then waits until the consumer has released room (or about {@code nanos} passed). */
    public void awaitSpace(long nanos) {
        publish();
        long head = cachedHead;
        waiting.await(() -> (long) Words.LONG.getVolatile(control, (long) CONSUMER_POSITION) != head,
                spaceFutex, producerWaiting, nanos);
        cachedHead = (long) Words.LONG.getAcquire(control, (long) CONSUMER_POSITION);
    }

    public int capacity() {
        return capacity;
    }

    public int maxFrameLength() {
        return maxFrame;
    }
}
