package org.flinkbridge.runner;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * A worker in a PID namespace of its own, as a Kubernetes sidecar or a compose service is by default: the
 * process ids in the ring header mean nothing to the other side, so liveness must rest on the heartbeats
 * and the closed flag. The job runs over shm against such a worker and accounts for every input.
 */
class PidNamespaceTest {

    @Test
    void aJobRunsOverShmWithAWorkerInAnotherPidNamespace(@TempDir Path dir) throws Exception {
        assumeTrue("root".equals(System.getProperty("user.name")), "a new PID namespace needs root");
        // Input at a steady rate, so both sides often wait and look at their peer between records.
        Path pipeline = TestPipelines.write(dir, "p", """
                name: across-namespaces
                sources:
                  events: {type: generator, count: 6000, rate: 3000, keys: 10, seed: 1}
                steps:
                  - {step_name: add_processed, type: append_field}
                sinks:
                  out: {type: file, path: unused}
                bridge: {transport: shm}
                """);
        // --mount-proc gives the worker the /proc of its namespace, as a container has; --kill-child ends it
        // with unshare, which itself ignores SIGTERM while it waits, hence SIGKILL below.
        Process worker = new ProcessBuilder("unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-jar", TestPipelines.workerJar(), "--port", "0")
                .redirectError(ProcessBuilder.Redirect.INHERIT).start();
        try {
            String address = TestPeers.workerAddress(worker);

            String summary = LocalRunner.run(new String[] {pipeline.toString(), "--worker-address", address,
                    "--output", dir.resolve("out").toString()});

            assertTrue(summary.contains("read=6000 sent=6000 received=6000 written=6000"), summary);
            assertTrue(summary.contains("every input accounted for"), summary);
        } finally {
            worker.destroyForcibly().waitFor();
        }
    }
}
