package org.flinkbridge.runner;

import org.flinkbridge.bridge.BridgeOptions;
import org.flinkbridge.job.JobArguments;
import org.flinkbridge.pipeline.GrpcMode;
import org.flinkbridge.pipeline.Transport;
import org.flinkbridge.pipeline.WorkerLanguage;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class JobArgumentsTest {

    @Test
    void flagsAndConfigurationOptions() {
        JobArguments args = JobArguments.parse(new String[] {"p.yaml", "--transport=grpc", "--grpc-mode", "compat",
                "-Dflink-bridge.shm.ring-capacity=64kb", "--parallelism=3", "-Dflink-bridge.liveness-timeout=1s", "--worker", "python"}, null);

        assertEquals(new JobArguments(Path.of("p.yaml"), Transport.GRPC, GrpcMode.COMPAT, null, WorkerLanguage.PYTHON,
                null, null, 3,
                Map.of("flink-bridge.shm.ring-capacity", "64kb", "flink-bridge.liveness-timeout", "1s")), args);
    }

    @Test
    void anOptionWithoutValueIsRefused() {
        IllegalArgumentException error = assertThrows(IllegalArgumentException.class,
                () -> JobArguments.parse(new String[] {"p.yaml", "-Dflink-bridge.liveness-timeout"}, null));

        assertTrue(error.getMessage().startsWith("'-Dflink-bridge.liveness-timeout' must be -Dkey=value; usage:"),
                error.getMessage());
    }

    @Test
    void aRingCapacityThatIsNoPowerOfTwoEndsBeforeTheJobStarts(@org.junit.jupiter.api.io.TempDir Path dir) {
        Path pipeline = TestPipelines.write(dir, "p", BridgeJobEndToEndTest.examplePipeline(10));

        IllegalArgumentException error = assertThrows(IllegalArgumentException.class, () -> LocalRunner.run(
                new String[] {pipeline.toString(), "-Dflink-bridge.shm.ring-capacity=5000b"}));

        assertEquals("flink-bridge.shm.ring-capacity must be a power of two from 4096 bytes to 1 gb, not 5000 bytes",
                error.getMessage());
    }

    @Test
    void aWorkerAddressOffThisHostEndsBeforeTheJobStarts(@org.junit.jupiter.api.io.TempDir Path dir) {
        Path pipeline = TestPipelines.write(dir, "p", BridgeJobEndToEndTest.examplePipeline(10));

        // 192.0.2.0/24 is TEST-NET-1: never routed, and never contacted here either, since the refusal comes first.
        IllegalArgumentException error = assertThrows(IllegalArgumentException.class, () -> LocalRunner.run(
                new String[] {pipeline.toString(), "--transport=grpc", "--worker-address", "192.0.2.1:50051"}));

        assertTrue(error.getMessage().startsWith("worker address '192.0.2.1:50051' is refused: 192.0.2.1 is not a "
                + "loopback address; "), error.getMessage());
        assertTrue(error.getMessage().endsWith(BridgeOptions.ALLOW_PLAINTEXT_REMOTE.key() + "=true to allow it"),
                error.getMessage());
    }
}
