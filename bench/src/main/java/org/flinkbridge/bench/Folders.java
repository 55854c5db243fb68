package org.flinkbridge.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/** Folders a benchmark writes for itself. Free of Flink, for the JMH benchmarks too. */
final class Folders {

    private Folders() {}

    /** Deletes {@code root} and everything below it. */
    static void deleteTree(Path root) throws IOException {
        try (Stream<Path> files = Files.walk(root)) {
            for (Path file : files.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(file);
            }
        }
    }
}
