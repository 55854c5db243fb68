package org.flinkbridge.bridge.function;

import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

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
}
