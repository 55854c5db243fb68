package org.flinkbridge.transport.shm;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Linux futex wait and wake on a 32-bit word of the shared mapping, through a Panama downcall to libc's
 * {@code syscall}. Shared (not private) futexes, since the two sides are different processes.
 */
final class Futex {

    private static final int FUTEX_WAIT = 0;
    private static final int FUTEX_WAKE = 1;
    private static final long SYS_FUTEX = switch (System.getProperty("os.arch")) {
        case "amd64", "x86_64" -> 202;
        case "aarch64" -> 98;
        default -> throw new ExceptionInInitializerError(
                "futex system call number unknown for " + System.getProperty("os.arch"));
    };
    private static final MethodHandle SYSCALL = Linker.nativeLinker().downcallHandle(
            Linker.nativeLinker().defaultLookup().find("syscall").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS,
                    ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS,
                    ValueLayout.JAVA_INT),
            Linker.Option.firstVariadicArg(1));

    /** A struct timespec for one waiting thread, reused across waits. */
    private final MemorySegment timeout = Arena.ofAuto().allocate(16, 8);

    /** Sleeps while {@code word} still holds {@code expected}, at most {@code nanos}; spurious returns happen. */
    void await(MemorySegment word, int expected, long nanos) {
        timeout.set(ValueLayout.JAVA_LONG, 0, nanos / 1_000_000_000L);
        timeout.set(ValueLayout.JAVA_LONG, 8, nanos % 1_000_000_000L);
        call(word, FUTEX_WAIT, expected, timeout);
    }

    static void wakeAll(MemorySegment word) {
        call(word, FUTEX_WAKE, Integer.MAX_VALUE, MemorySegment.NULL);
    }

    private static void call(MemorySegment word, int op, int value, MemorySegment timeout) {
        try {
            // EAGAIN (value changed), EINTR and ETIMEDOUT are all "go and look again" to the callers.
            long ignored = (long) SYSCALL.invokeExact(SYS_FUTEX, word, op, value, timeout, MemorySegment.NULL, 0);
        } catch (Throwable e) {
            throw new IllegalStateException("futex call failed", e);
        }
    }
}
