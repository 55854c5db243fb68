package org.flinkbridge.job.io;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * Makes a file sink's directory ready for a fresh local run: part files of earlier runs are removed, so the
 * output is this run's alone. A directory holding anything else is left alone and refused.
 */
public final class OutputDirectories {

    private OutputDirectories() {}

    public static void prepare(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        if (!Files.isDirectory(dir)) {
            throw new IllegalArgumentException("the output " + dir + " is a file, not a directory");
        }
        List<Path> entries;
        try (Stream<Path> walk = Files.walk(dir)) {
            entries = walk.filter(p -> !p.equals(dir)).sorted(Comparator.reverseOrder()).toList();
        }
        for (Path entry : entries) {
            String name = entry.getFileName().toString();
            if (Files.isRegularFile(entry) && !name.startsWith("part-") && !name.startsWith(".part-")) {
                throw new IllegalArgumentException("the output directory " + dir + " holds " + entry
                        + ", which no file sink wrote; choose another output directory (--output DIR)");
            }
        }
        for (Path entry : entries) {
            Files.delete(entry);
        }
    }
}
