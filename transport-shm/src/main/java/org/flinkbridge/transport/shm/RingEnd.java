package org.flinkbridge.transport.shm;

import java.lang.foreign.MemorySegment;

/**
 * What both ends of one ring hold: the mapped file and where the ring's data starts in it, its capacity (a power
 * of two) and the largest frame it takes, the positions the two ends share, how to wait, and the ring's name for
 * errors.
 */
abstract sealed class RingEnd permits RingConsumer, RingProducer {

    final MemorySegment file;
    final long data;
    final int capacity;
    final int mask;
    final int maxFrame;
    final RingControl control;
    final WaitStrategy waiting;
    final String name;

    RingEnd(MemorySegment file, long controlOffset, long dataOffset, int capacity, WaitStrategy waiting, String name) {
        this.file = file;
        this.data = dataOffset;
        this.capacity = capacity;
        this.mask = capacity - 1;
        this.maxFrame = RingLayout.maxFrameLength(capacity);
        this.control = new RingControl(file, controlOffset);
        this.waiting = waiting;
        this.name = name;
    }
}
