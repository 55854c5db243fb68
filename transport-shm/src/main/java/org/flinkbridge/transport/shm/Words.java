package org.flinkbridge.transport.shm;

import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/** Ordered access to the shared words: VarHandles over (segment, offset). The layout is little-endian. */
final class Words {

    static final VarHandle LONG = ValueLayout.JAVA_LONG.varHandle();
    static final VarHandle INT = ValueLayout.JAVA_INT.varHandle();

    static {
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            throw new ExceptionInInitializerError("the ring layout is little-endian; this machine is not");
        }
    }

    private Words() {}
}
