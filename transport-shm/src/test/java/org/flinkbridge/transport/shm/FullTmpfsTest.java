package org.flinkbridge.transport.shm;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * A ring file on a tmpfs too small for it (Docker gives a container 64 MB of /dev/shm) is an I/O error naming
 * the directory, its free space and the size needed, and leaves no file; it must not be the SIGBUS of a
 * touched page that is not there, which the JVM raises as an {@link InternalError}.
 */
class FullTmpfsTest {

    private static final int RING_CAPACITY = 1 << 20;

    @Test
    void aRingThatDoesNotFitIsAnIoErrorAndLeavesNoFile(@TempDir Path dir) throws Exception {
        assumeTrue("root".equals(System.getProperty("user.name")), "mounting a small tmpfs needs root");
        Path tmpfs = Files.createDirectory(dir.resolve("tmpfs"));
        run("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", tmpfs.toString());
        try {
            Path rings = tmpfs.resolve("flink-bridge");
            Path path = rings.resolve("session-1" + RingFiles.SUFFIX);

            IOException error = assertThrows(IOException.class,
                    () -> RingFile.create(path, RING_CAPACITY, RING_CAPACITY, "0123456789abcdef"));

            String message = error.getMessage();
            assertTrue(message.contains("in " + rings + ": it needs "
                    + RingLayout.fileSize(RING_CAPACITY, RING_CAPACITY) + " bytes"), message);
            assertTrue(message.matches("(?s).* and the file system has \\d+ bytes free.*"), message);
            try (Stream<Path> left = Files.list(rings)) {
                assertEquals(List.of(), left.toList(), "the failed ring file was left behind");
            }
            // A ring that fits is still made in the same place.
            try (RingFile fits = RingFile.create(path, 4096, 4096, "0123456789abcdef")) {
                assertTrue(Files.isRegularFile(fits.path()));
            }
        } finally {
            // Lazily: after a failure the JVM may still map a file there.
            run("umount", "--lazy", tmpfs.toString());
        }
    }

    private static void run(String... command) throws Exception {
        Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(process.waitFor(30, TimeUnit.SECONDS) && process.exitValue() == 0,
                String.join(" ", command) + " failed: " + output);
    }
}
