package org.flinkbridge.transport.shm;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Gives a file its storage up front with {@code posix_fallocate} (a Panama downcall to libc), so that a full
 * tmpfs is an ordinary I/O error at creation. A file only truncated to size is sparse: its pages are found
 * missing when first touched through the mapping, a SIGBUS the JVM turns into an {@link InternalError},
 * which Flink treats as fatal for the whole TaskManager.
 */
final class FileAllocation {

    private static final int O_RDWR = 2;
    private static final int O_CLOEXEC = 0x80000;
    private static final int ENOSPC = 28;
    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final MethodHandle OPEN = downcall("open",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT),
            Linker.Option.firstVariadicArg(2), Linker.Option.captureCallState("errno"));
    private static final MethodHandle POSIX_FALLOCATE = downcall("posix_fallocate",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG,
                    ValueLayout.JAVA_LONG));
    private static final MethodHandle CLOSE = downcall("close",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));

    private FileAllocation() {}

    /**
     * Allocates the first {@code size} bytes of the existing file {@code path}, extending it to that size.
     *
     * @throws IOException when the file system has no room (naming its free space and the size needed) or
     *                     refuses for another reason
     */
    static void allocate(Path path, long size) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            int fd = (int) OPEN.invokeExact(state, arena.allocateFrom(path.toString()), O_RDWR | O_CLOEXEC, 0);
            if (fd < 0) {
                throw new IOException(path + ": cannot open it to allocate its space (errno "
                        + (int) ERRNO.get(state, 0L) + ")");
            }
            int error;
            try {
                error = (int) POSIX_FALLOCATE.invokeExact(fd, 0L, size);
            } finally {
                int ignored = (int) CLOSE.invokeExact(fd);
            }
            if (error == ENOSPC) {
                throw new IOException("no room for " + path.getFileName() + " in " + path.getParent() + ": it needs "
                        + size + " bytes and the file system has " + Files.getFileStore(path.getParent())
                        .getUsableSpace() + " bytes free; give that tmpfs more room (in Docker: --shm-size, or a "
                        + "larger shared tmpfs volume) or the sessions smaller rings (flink-bridge.shm.ring-capacity)");
            }
            if (error != 0) {
                throw new IOException(path + ": allocating " + size + " bytes failed (errno " + error + ")");
            }
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable e) {
            throw new IllegalStateException("a call to libc failed", e);
        }
    }

    private static MethodHandle downcall(String name, FunctionDescriptor descriptor, Linker.Option... options) {
        return LINKER.downcallHandle(LINKER.defaultLookup().find(name).orElseThrow(
                () -> new ExceptionInInitializerError("libc has no " + name)), descriptor, options);
    }
}
