package org.flinkbridge.transport.shm;

import java.io.IOException;
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
 * The reading side of one ring (single consumer). Frames are handed over in place and checked before use:
 * a length or type that cannot be right fails with an error naming the frame and its position. The consumer
 * position is released once per {@link #poll}, not per frame.
 */
public final class RingConsumer {

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
    private final java.util.function.BooleanSupplier framesReady = this::hasFrames;
    private long head;
    private long cachedTail;
    /** Where the frame being handled starts, while a handler runs; -1 otherwise. */
    private long handling = -1;

    RingConsumer(MemorySegment file, long controlOffset, long dataOffset, int capacity, WaitStrategy waiting,
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
        this.head = (long) Words.LONG.getVolatile(control, (long) CONSUMER_POSITION);
        this.cachedTail = head;
    }

    /** Hands up to {@code limit} published frames to {@code handler}; returns how many. */
    public int poll(FrameHandler handler, int limit) throws IOException {
        if (head == cachedTail) {
            cachedTail = (long) Words.LONG.getAcquire(control, (long) PRODUCER_POSITION);
            if (head == cachedTail) {
                return 0;
            }
            if (cachedTail - head > capacity || cachedTail < head) {
                throw new RingException(name + ": corrupt positions: producer at " + cachedTail + ", consumer at "
                        + head + ", capacity " + capacity);
            }
        }
        int frames = 0;
        try {
            while (head < cachedTail && frames < limit) {
                int index = (int) (head & mask);
                long at = data + index;
                int length = file.get(ValueLayout.JAVA_INT, at + FRAME_LENGTH);
                int type = file.get(ValueLayout.JAVA_SHORT, at + FRAME_TYPE) & 0xffff;
                // A corrupt length near Integer.MAX_VALUE must not wrap when aligned.
                long aligned = (length + (long) RingLayout.FRAME_ALIGNMENT - 1) & -RingLayout.FRAME_ALIGNMENT;
                if (!FrameType.isKnown(type)) {
                    throw corrupt("unknown frame type " + type, index, length);
                }
                int minimum = type == FrameType.PADDING ? RingLayout.FRAME_ALIGNMENT : FRAME_HEADER;
                if (length < minimum || aligned > capacity - index || head + aligned > cachedTail
                        || (type != FrameType.PADDING && length > maxFrame)) {
                    throw corrupt("impossible length " + length + " for a " + FrameType.name(type) + " frame", index,
                            length);
                }
                long start = head;
                head += aligned;
                if (type != FrameType.PADDING) {
                    frames++;
                    handling = start;
                    handler.onFrame(type, file.get(ValueLayout.JAVA_SHORT, at + FRAME_FLAGS) & 0xffff,
                            file.get(ValueLayout.JAVA_LONG, at + FRAME_SEQUENCE), file,
                            at + FRAME_HEADER, length - FRAME_HEADER);
                }
            }
        } finally {
            handling = -1;
            Words.LONG.setVolatile(control, (long) CONSUMER_POSITION, head);
            WaitStrategy.wakeIfWaiting(spaceFutex, producerWaiting);
        }
        return frames;
    }

    /**
     * For a handler that must wait (for room to answer in the other ring, say): releases the frames handled
     * before the current one and wakes the producer if it waits, so the peer can drain what this side wrote
     * and go on. Without it, both sides could wait for each other until their timeouts.
     */
    public void releaseHandled() {
        Words.LONG.setVolatile(control, (long) CONSUMER_POSITION, handling >= 0 ? handling : head);
        WaitStrategy.wakeIfWaiting(spaceFutex, producerWaiting);
    }

    private RingException corrupt(String what, int index, int length) {
        return new RingException(name + ": corrupt frame at position " + head + " (ring offset " + index + "): "
                + what + " (frames are " + FRAME_HEADER + " to " + maxFrame + " bytes, 8-byte aligned)");
    }

    /** Whether a frame is published and not yet polled. */
    public boolean hasFrames() {
        return head != (long) Words.LONG.getVolatile(control, (long) PRODUCER_POSITION);
    }

    /** Waits until a frame is published (or about {@code nanos} passed); spins first, then sleeps. */
    public void awaitFrames(long nanos) {
        waiting.await(framesReady, dataFutex, consumerWaiting, nanos);
    }
}
