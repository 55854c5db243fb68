package org.flinkbridge.transport.shm;

import org.flinkbridge.protocol.CorruptRecordException;
import org.flinkbridge.protocol.FrameType;

import java.io.IOException;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.flinkbridge.transport.shm.RingLayout.FRAME_FLAGS;
import static org.flinkbridge.transport.shm.RingLayout.FRAME_HEADER;
import static org.flinkbridge.transport.shm.RingLayout.FRAME_LENGTH;
import static org.flinkbridge.transport.shm.RingLayout.FRAME_SEQUENCE;
import static org.flinkbridge.transport.shm.RingLayout.FRAME_TYPE;

/**
 * The reading side of one ring (single consumer). Frames are handed over in place and checked before use:
 * a length or type that cannot be right fails with an error naming the frame and its position. The consumer
 * position is released once per {@link #poll}, not per frame.
 */
public final class RingConsumer extends RingEnd {

    private final java.util.function.BooleanSupplier framesReady = this::hasFrames;
    private long head;
    private long cachedTail;
    /** Where the frame being handled starts, while a handler runs; -1 otherwise. */
    private long handling = -1;

    RingConsumer(MemorySegment file, long controlOffset, long dataOffset, int capacity, WaitStrategy waiting,
                 String name) {
        super(file, controlOffset, dataOffset, capacity, waiting, name);
        this.head = control.consumerPositionForWait();
        this.cachedTail = head;
    }

    /** Hands up to {@code limit} published frames to {@code handler}; returns how many. */
    public int poll(FrameHandler handler, int limit) throws IOException {
        if (head == cachedTail) {
            // The head is checked with the tail: it started at the shared consumer position, which the peer (or
            // whoever wrote the file) may have set to anything, and only moves by checked frames.
            long tail = control.producerPosition();
            RingPositions.check(name, tail, head, capacity);
            cachedTail = tail;
            if (head == cachedTail) {
                return 0;
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
                // Against the bytes published, not head + aligned against the tail: near Long.MAX_VALUE the sum
                // would wrap, pass, and send the head back to walk PADDING frames without end.
                if (length < minimum || aligned > capacity - index || aligned > cachedTail - head
                        || (type != FrameType.PADDING && length > maxFrame)) {
                    throw corrupt("impossible length " + length + " for a " + FrameType.name(type) + " frame", index,
                            length);
                }
                long start = head;
                head += aligned;
                if (type != FrameType.PADDING) {
                    frames++;
                    handling = start;
                    try {
                        handler.onFrame(type, file.get(ValueLayout.JAVA_SHORT, at + FRAME_FLAGS) & 0xffff,
                                file.get(ValueLayout.JAVA_LONG, at + FRAME_SEQUENCE), file,
                                at + FRAME_HEADER, length - FRAME_HEADER);
                    } catch (CorruptRecordException corrupt) {
                        throw new RingException(name + ": " + corrupt.getMessage() + " in the frame at position "
                                + start, corrupt);
                    }
                }
            }
        } finally {
            handling = -1;
            control.publishConsumerPosition(head);
        }
        return frames;
    }

    /**
     * For a handler that must wait (for room to answer in the other ring, say): releases the frames handled
     * before the current one and wakes the producer if it waits, so the peer can drain what this side wrote
     * and go on. Without it, both sides could wait for each other until their timeouts.
     */
    public void releaseHandled() {
        control.publishConsumerPosition(handling >= 0 ? handling : head);
    }

    private RingException corrupt(String what, int index, int length) {
        return new RingException(name + ": corrupt frame at position " + head + " (ring offset " + index + "): "
                + what + " (frames are " + FRAME_HEADER + " to " + maxFrame + " bytes, 8-byte aligned)");
    }

    /** Whether a frame is published and not yet polled. */
    public boolean hasFrames() {
        return head != control.producerPositionForWait();
    }

    /** Waits until a frame is published (or about {@code nanos} passed); spins first, then sleeps. */
    public void awaitFrames(long nanos) {
        control.awaitFrames(waiting, framesReady, nanos);
    }
}
