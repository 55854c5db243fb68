package org.flinkbridge.transport.shm;

import org.flinkbridge.protocol.FrameType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.flinkbridge.transport.shm.RingLayout.FRAME_FLAGS;
import static org.flinkbridge.transport.shm.RingLayout.FRAME_HEADER;
import static org.flinkbridge.transport.shm.RingLayout.FRAME_LENGTH;
import static org.flinkbridge.transport.shm.RingLayout.FRAME_SEQUENCE;
import static org.flinkbridge.transport.shm.RingLayout.FRAME_TYPE;

/**
 * The writing side of one ring (single producer). Frames are claimed and written in place; the producer
 * position is published only by {@link #publish}, so a batch of frames costs one release store (and a wake
 * only if the consumer sleeps). Nothing here allocates.
 */
public final class RingProducer extends RingEnd {

    private long tail;
    private long published;
    private long cachedHead;

    RingProducer(MemorySegment file, long controlOffset, long dataOffset, int capacity, WaitStrategy waiting,
                 String name) {
        super(file, controlOffset, dataOffset, capacity, waiting, name);
        this.tail = control.producerPositionForWait();
        this.published = tail;
        this.cachedHead = control.consumerPositionForWait();
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
            // Checked before anything is written: the consumer position is the peer's to set, and the tail
            // started at the shared producer position (it moves by aligned frames, so checking what was
            // published checks its alignment too).
            long head = control.consumerPosition();
            RingPositions.check(name, published, head, capacity);
            cachedHead = head;
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
        control.publishProducerPosition(tail);
        published = tail;
    }

    /**
     * Whether the consumer has released everything published so far: it is idle or about to be, so frames
     * written since are better published now than batched further.
     */
    public boolean consumerCaughtUp() {
        return control.consumerPosition() == published;
    }

    /** Publishes, then waits until the consumer has released room (or about {@code nanos} passed). */
    public void awaitSpace(long nanos) {
        publish();
        long head = cachedHead;
        control.awaitSpace(waiting, () -> control.consumerPositionForWait() != head, nanos);
        cachedHead = control.consumerPosition();
    }

    public int maxFrameLength() {
        return maxFrame;
    }
}
