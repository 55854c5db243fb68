package org.flinkbridge.protocol;

import java.io.IOException;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Map;

/**
 * The ring folder (docs/protocol.md, "The ring folder"): the folder of a bridge's ring files, the control secret
 * and a spawned worker's socket. Every side checks it before it writes anything there or reads a secret from it:
 * in a world-writable parent such as /dev/shm any local user can create the folder's name first, and would then
 * read the secret and replace the socket.
 */
public final class RingFolder {

    /** The only mode a ring folder may have: rwx for its owner, nothing for anyone else. */
    private static final int PRIVATE_MODE = 0700;
    private static final int FILE_TYPE = 0170000;
    private static final int DIRECTORY = 0040000;
    private static final int SYMBOLIC_LINK = 0120000;
    private static final MethodHandle GETEUID = Linker.nativeLinker().downcallHandle(
            Linker.nativeLinker().defaultLookup().find("geteuid").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_INT));

    private RingFolder() {}

    /**
     * Creates {@code folder} with mode 0700 when it is missing (its parents as needed), then checks it, whoever
     * made it: a folder, not a symbolic link, owned by this process's effective user, with mode 0700 exactly.
     *
     * @return {@code folder}
     * @throws IOException naming the folder, its owner and its mode, and what to do, when it is anything else
     */
    public static Path ensurePrivate(Path folder) throws IOException {
        Path absolute = folder.toAbsolutePath().normalize();
        if (absolute.getParent() != null) {
            Files.createDirectories(absolute.getParent());
        }
        try {
            Files.createDirectory(absolute, PosixFilePermissions.asFileAttribute(
                    PosixFilePermissions.fromString("rwx------")));
        } catch (FileAlreadyExistsException exists) {
            // There already, or made by another process this moment: checked below like any other.
        }
        Map<String, Object> attributes = Files.readAttributes(absolute, "unix:mode,uid", LinkOption.NOFOLLOW_LINKS);
        int mode = (Integer) attributes.get("mode");
        long owner = Integer.toUnsignedLong((Integer) attributes.get("uid"));
        long user = effectiveUid();
        int type = mode & FILE_TYPE;
        if (type != DIRECTORY || owner != user || (mode & 07777) != PRIVATE_MODE) {
            String kind = type == DIRECTORY ? "a folder" : type == SYMBOLIC_LINK ? "a symbolic link" : "not a folder";
            throw new IOException(String.format("ring folder %s is %s owned by uid %d with mode %04o; it must be a "
                    + "folder (not a link) owned by this process's user (uid %d) with mode 0700, or another local "
                    + "user could read the control secret or replace the worker's socket. Remove it, or name another "
                    + "folder (flink-bridge.shm.directory on the bridge, --ring-dir on the worker)",
                    absolute, kind, owner, mode & 07777, user));
        }
        return folder;
    }

    private static long effectiveUid() {
        try {
            return Integer.toUnsignedLong((int) GETEUID.invokeExact());
        } catch (Throwable e) {
            throw new IllegalStateException("geteuid failed", e);
        }
    }
}
