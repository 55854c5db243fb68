package org.flinkbridge.transport.shm;

import java.io.IOException;
import java.lang.foreign.MemorySegment;

/**
 * Receives frames in place: the body is {@code length} bytes of {@code file} at {@code offset}, valid during the
 * call; {@code flags} as {@link RingLayout} defines them for the type.
 */
@FunctionalInterface
public interface FrameHandler {
    void onFrame(int type, int flags, long sequence, MemorySegment file, long offset, int length) throws IOException;
}
