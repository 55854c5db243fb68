package org.flinkbridge.runner;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every worker we ship serves the same jobs: the Python and the Rust worker give the Java worker's output for the
 * bundled example over both session transports; the Rust worker refuses the prototype's service, which it does not
 * serve, naming what it does. Its protocol points are in the conformance kit's test, its recovery from faults in
 * {@link CheckpointRecoveryTest}.
 */
class WorkerLanguagesTest {

    @Test
    void everyWorkerGivesTheJavaWorkersOutputOfTheBundledExampleOverShmAndTheStream(@TempDir Path dir)
            throws Exception {
        List<String> javaOutput = TestPipelines.runSorted(dir.resolve("java"), "--worker=java");
        assertEquals(1035, javaOutput.size());

        for (String worker : List.of("python", "rust")) {
            for (String transport : List.of("shm", "grpc")) {
                List<String> output = TestPipelines.runSorted(dir.resolve(worker + "-" + transport),
                        "--worker=" + worker, "--transport=" + transport);
                assertEquals(javaOutput, output, worker + " over " + transport);
            }
        }
    }

    @Test
    void thePrototypesServiceIsRefusedNamingTheTransportsItServes(@TempDir Path dir) {
        IllegalArgumentException refused = assertThrows(IllegalArgumentException.class,
                () -> LocalRunner.run(new String[] {"--output", dir.toString(), "--worker=rust", "--transport=grpc",
                        "--grpc-mode=compat"}));
        assertTrue(refused.getMessage().contains("the Rust worker does not serve the prototype's service"),
                refused.getMessage());
    }
}
