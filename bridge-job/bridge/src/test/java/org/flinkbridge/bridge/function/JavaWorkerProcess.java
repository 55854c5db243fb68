package org.flinkbridge.bridge.function;

import org.flinkbridge.bridge.BridgeOptions;
import org.flinkbridge.bridge.session.SessionSpec;
import org.flinkbridge.pipeline.BridgeSettings;
import org.flinkbridge.pipeline.TransportMode;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

/**
 * A real Java worker process (the worker module's jar) serving on a port of its own while a test class runs, for
 * tests through Flink: {@code @RegisterExtension static final JavaWorkerProcess WORKER = new JavaWorkerProcess();}.
 */
final class JavaWorkerProcess implements BeforeAllCallback, AfterAllCallback {

    private Process process;
    private String address;

    @Override
    public void beforeAll(ExtensionContext context) throws Exception {
        process = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-jar", System.getProperty("flink-bridge.worker.jar"),
                "--port", "0").redirectError(ProcessBuilder.Redirect.INHERIT).start();
        String line = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))
                .readLine();
        address = line.substring(line.lastIndexOf(' ') + 1);
    }

    @Override
    public void afterAll(ExtensionContext context) {
        process.destroyForcibly();
    }

    /** Where it serves: {@code host:port}. */
    String address() {
        return address;
    }

    /**
     * A gRPC stream session on this worker of {@code jobName}'s segment main, of the one step {@code step}, with the
     * bridge's default settings and {@code recovery}.
     */
    SessionSpec sessionSpec(String jobName, SessionSpec.Step step, SessionSpec.Recovery recovery) {
        return new SessionSpec(jobName, 0, "main", List.of(step), TransportMode.GRPC_STREAM, address,
                BridgeOptions.ALLOW_PLAINTEXT_REMOTE.defaultValue(), List.of(), BridgeSettings.DEFAULT_MAX_IN_FLIGHT,
                BridgeSettings.DEFAULT_WORKER_TIMEOUT_MS, BridgeOptions.GRPC_BATCH_FRAMES.defaultValue(),
                SessionSpec.ShmSettings.defaults(), recovery, BridgeOptions.MAX_SNAPSHOT_SIZE.defaultValue().getBytes());
    }
}
