package org.flinkbridge.chaos;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The Docker sandbox as the load test drives it: the launcher brings it up and down ({@code sandbox up|down}),
 * docker and docker-compose restart, upgrade and kill its containers, a file fills a TaskManager's ring tmpfs, and
 * the load generator and the oracle run as services of their own.
 */
final class Sandbox {

    private static final String PROJECT = "flink-bridge-sandbox";
    /** Room left in a ring tmpfs that is pushed near its limit: one new session's two 4 MiB rings and a little. */
    private static final long RING_ROOM_BYTES = 9L << 20;
    /** The folder a TaskManager and its worker share (deploy/sandbox/docker-compose.yml). */
    static final String SHARED = "/bridge";
    /** The ring folder in it: the bridge's flink-bridge.shm.directory and the worker's --ring-dir. */
    static final String RINGS = SHARED + "/rings";
    private static final String FILLER = SHARED + "/filler";
    /**
     * Where the sandbox's Flink keeps checkpoints: the volume the JobManager and both TaskManagers mount. A job
     * submitted from this machine's CLI must name it, or it takes the local cluster's folder from the CLI's
     * configuration, which each container would then have on its own file system.
     */
    static final String CHECKPOINTS = "file:///checkpoints";
    /** The compose profile of the load generator and the oracle, and the volume they share. */
    private static final String LOAD_PROFILE = "load";
    private static final String LOAD = "/load";

    private final Path home;
    private final String workerLanguage;

    Sandbox(Path home, String workerLanguage) {
        this.home = home;
        this.workerLanguage = workerLanguage;
    }

    /** Starts the sandbox afresh (an empty Kafka, no checkpoints), with the worker images of version v1. */
    void up() throws Exception {
        run(Map.of(), home.resolve("flink-bridge").toString(), "sandbox", "down");
        run(Map.of("WORKER_LANGUAGE", workerLanguage), home.resolve("flink-bridge").toString(), "sandbox", "up");
    }

    void down() throws Exception {
        run(Map.of(), home.resolve("flink-bridge").toString(), "sandbox", "down");
    }

    /** {@code docker restart}: the worker is asked to stop (SIGTERM), then starts again in the same container. */
    void restartWorker(int n) throws Exception {
        run(Map.of(), "docker", "restart", "-t", "20", container("worker-" + n));
    }

    /** Replaces worker {@code n}'s container by one of the image of {@code version}, as a deployment would. */
    void upgradeWorker(int n, String version) throws Exception {
        compose(Map.of("WORKER_VERSION", version), "up", "-d", "--no-deps", "worker-" + n);
    }

    /**
     * SIGKILLs TaskManager {@code n}'s JVM (the child of the container's init), so that the container exits with
     * a failure and the compose restart policy brings it back.
     */
    void killTaskManager(int n) throws Exception {
        long init = Long.parseLong(run(Map.of(), "docker", "inspect", "-f", "{{.State.Pid}}",
                container("taskmanager-" + n)).trim());
        List<ProcessHandle> jvms = ProcessHandle.of(init).stream().flatMap(ProcessHandle::children).toList();
        if (jvms.isEmpty()) {
            throw new IOException("TaskManager " + n + " runs no process under its init (pid " + init + ")");
        }
        for (ProcessHandle jvm : jvms) {
            jvm.destroyForcibly();
        }
    }

    /** Fills TaskManager {@code n}'s ring tmpfs (through its worker, which shares it) up to one session's room. */
    String fillRings(int n) throws Exception {
        return run(Map.of(), "docker", "exec", container("worker-" + n), "sh", "-c",
                "avail=$(df --output=avail -B1 " + SHARED + " | tail -1); fallocate -l $((avail - " + RING_ROOM_BYTES
                        + ")) " + FILLER + " && df -h " + SHARED + " | tail -1").trim();
    }

    void emptyRings(int n) throws Exception {
        run(Map.of(), "docker", "exec", container("worker-" + n), "rm", "-f", FILLER);
    }

    /**
     * Starts one of the load test's services (load-generator, oracle; compose profile "load") with the LOAD_*
     * settings in {@code settings}, replacing a container of it left by an earlier use in this sandbox.
     */
    void startLoadService(String service, Map<String, String> settings) throws Exception {
        compose(settings, "up", "-d", "--no-deps", "--force-recreate", service);
    }

    /**
     * Waits up to {@code limit} for a load service to exit; its exit status, or a failure with its log when it was
     * still running.
     */
    int awaitExit(String service, Duration limit) throws Exception {
        String id = container(service);
        try {
            return Integer.parseInt(run(Map.of(), "timeout", Long.toString(limit.toSeconds()), "docker", "wait", id)
                    .trim());
        } catch (IOException e) {
            throw new IOException(service + " did not end within " + limit + "; its log:\n" + log(service), e);
        }
    }

    /** Copies {@code file} of the load services' shared volume out of {@code service}'s container into {@code dir}. */
    Path copyLoadFile(String service, String file, Path dir) throws Exception {
        run(Map.of(), "docker", "cp", container(service) + ":" + LOAD + "/" + file, dir.toString());
        return dir.resolve(file);
    }

    /** A service's log (all its containers' starts). */
    String log(String service) throws Exception {
        return compose(Map.of(), "logs", "--no-color", service);
    }

    /** Lines of a service's log (all its containers' starts) that contain {@code text}. */
    long logLines(String service, String text) throws Exception {
        return log(service).lines().filter(line -> line.contains(text)).count();
    }

    private String container(String service) throws Exception {
        String id = compose(Map.of(), "ps", "-q", service).trim();
        if (id.isEmpty()) {
            throw new IOException("the sandbox has no container for " + service + "; is it up?");
        }
        return id;
    }

    private String compose(Map<String, String> environment, String... args) throws Exception {
        List<String> command = new ArrayList<>(List.of("docker-compose", "-p", PROJECT, "-f",
                home.resolve("deploy/sandbox/docker-compose.yml").toString(), "--profile", LOAD_PROFILE));
        command.addAll(List.of(args));
        Map<String, String> withLanguage = new HashMap<>(environment);
        withLanguage.put("WORKER_LANGUAGE", workerLanguage);
        return run(withLanguage, command.toArray(String[]::new));
    }

    /** Runs a command; fails with its output unless it exits 0 within 10 minutes (an image build may run). */
    private String run(Map<String, String> environment, String... command) throws Exception {
        return Commands.run(home, environment, Duration.ofMinutes(10), List.of(command));
    }
}
