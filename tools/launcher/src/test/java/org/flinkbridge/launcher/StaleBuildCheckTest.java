package org.flinkbridge.launcher;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The launcher rebuilds when a source is newer than the jars, and only then: files it writes itself inside the
 * checkout ({@code cluster start}'s configuration, {@code sandbox build}'s copies of pom files, a run's output)
 * must not count, or every command after a cluster start would run a full Maven build. Runs the launcher's own
 * {@code newer_sources} from a copy of its scripts in a checkout of a few files.
 */
class StaleBuildCheckTest {

    private static final Path HOME = Path.of(System.getProperty("user.dir"));

    @Test
    void whatTheLauncherWritesIsNoSource(@TempDir Path checkout) throws Exception {
        Path jar = builtJar(checkout);
        for (String written : new String[] {".flink-bridge/cluster/conf/config.yaml", ".flink-bridge/sandbox/flink/pom.xml",
                "out/example/part-0.yaml", "workers/java/target/classes/Step.java", "docs/examples/pipeline.yaml"}) {
            touchNewer(checkout.resolve(written), jar);
        }
        assertEquals("", newerSources(checkout, jar));
    }

    @Test
    void aChangedSourceOrPomIsSeen(@TempDir Path checkout) throws Exception {
        for (String source : new String[] {"bridge-job/bridge/src/main/java/Bridge.java", "workers/java/pom.xml",
                "proto/wire/src/main/proto/bridge_control.proto", "native/src/ring.c",
                "bridge-job/runner/src/test/resources/pipeline.yaml"}) {
            Path jar = builtJar(checkout);
            touchNewer(checkout.resolve(source), jar);
            assertEquals(checkout.resolve(source).toString(), newerSources(checkout, jar), source);
            Files.delete(checkout.resolve(source));
        }
    }

    private static Path builtJar(Path checkout) throws Exception {
        Files.createDirectories(checkout.resolve("tools/launcher"));
        Files.copy(HOME.resolve("tools/launcher/env.sh"), checkout.resolve("tools/launcher/env.sh"),
                StandardCopyOption.REPLACE_EXISTING);
        Path jar = checkout.resolve("bridge-job/job/target/bridge-job.jar");
        Files.createDirectories(jar.getParent());
        Files.write(jar, new byte[0]);
        Files.setLastModifiedTime(jar, FileTime.from(Instant.now().minusSeconds(60)));
        Files.setLastModifiedTime(checkout.resolve("tools/launcher/env.sh"), FileTime.from(Instant.now().minusSeconds(120)));
        return jar;
    }

    private static void touchNewer(Path file, Path than) throws Exception {
        Files.createDirectories(file.getParent());
        Files.writeString(file, "changed");
        Files.setLastModifiedTime(file, FileTime.from(Files.getLastModifiedTime(than).toInstant().plusSeconds(30)));
    }

    private static String newerSources(Path checkout, Path jar) throws Exception {
        Process check = new ProcessBuilder("bash", "-c", "source tools/launcher/env.sh && newer_sources \"$1\"", "check",
                jar.toString()).directory(checkout.toFile()).redirectErrorStream(true).start();
        assertTrue(check.waitFor(30, TimeUnit.SECONDS), "newer_sources did not end");
        String output = new String(check.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        assertEquals(0, check.exitValue(), output);
        return output;
    }
}
