package org.flinkbridge.chaos;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.yaml.snakeyaml.Yaml;

import java.io.IOException;
import java.io.StringReader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Kubernetes manifest (deploy/kubernetes/flink-bridge.yaml) is the sandbox's compose project
 * (deploy/sandbox/docker-compose.yml) in the production shape, and the two stay in agreement: the same images, the
 * worker's environment, the Flink configuration (the pod's own addresses aside), the shared in-memory volume at the
 * same place and of the same size, the same memory limits, no shared PID namespace and no port of the worker's.
 * Both run every container as the one unprivileged user the images name (the ring folder a TaskManager and its
 * worker share must belong to both), on a read-only root with the same paths writable, without capabilities or a
 * way to gain privileges; the sandbox listens on loopback only, and the pods take ingress from one another and
 * from labelled clients only.
 */
class SandboxManifestsTest {

    /** Keys only the pods set: where each process is reached on the pod network. */
    private static final Set<String> POD_ADDRESS_KEYS = Set.of("jobmanager.rpc.address", "jobmanager.bind-host",
            "rest.address", "rest.bind-address", "blob.server.port", "taskmanager.host", "taskmanager.bind-host",
            "taskmanager.rpc.port", "taskmanager.data.port", "metrics.reporter.prom.host");
    /** The unprivileged uid and gid every container runs as (the images' USER). */
    private static final int USER = 10001;
    private static final String LOOPBACK = "127.0.0.1";
    private static final Pattern DEFAULTED = Pattern.compile("\\$\\{[A-Z_]+:-([^}]*)}");

    private static Map<String, Object> composeServices;
    private static Map<String, Object> composeVolumes;
    private static Map<String, Map<String, Object>> podContainers;
    private static Map<String, Object> taskManagerPod;
    private static Map<String, Map<String, Object>> podSpecs;
    private static Map<String, Object> networkPolicy;
    private static Path home;

    @BeforeAll
    @SuppressWarnings("unchecked")
    static void load() throws IOException {
        home = Path.of(System.getProperty("user.dir"));
        Map<String, Object> compose = new Yaml().load(Files.readString(home.resolve("deploy/sandbox/docker-compose.yml")));
        composeServices = (Map<String, Object>) compose.get("services");
        composeVolumes = (Map<String, Object>) compose.get("volumes");
        podContainers = new HashMap<>();
        podSpecs = new HashMap<>();
        for (Object document : new Yaml().loadAll(Files.readString(home.resolve("deploy/kubernetes/flink-bridge.yaml")))) {
            Map<String, Object> resource = (Map<String, Object>) document;
            if ("NetworkPolicy".equals(resource.get("kind"))) {
                networkPolicy = resource;
            }
            if (!"Deployment".equals(resource.get("kind"))) {
                continue;
            }
            Map<String, Object> pod = map(map(map(resource, "spec"), "template"), "spec");
            for (Object container : (List<Object>) pod.get("containers")) {
                Map<String, Object> c = (Map<String, Object>) container;
                podContainers.put((String) c.get("name"), c);
                podSpecs.put((String) c.get("name"), pod);
                if (c.get("name").equals("taskmanager")) {
                    taskManagerPod = pod;
                }
            }
        }
        assertEquals(Set.of("jobmanager", "taskmanager", "worker"), podContainers.keySet());
    }

    @Test
    void bothRunTheSameImages() {
        assertEquals(image("jobmanager"), podContainers.get("jobmanager").get("image"));
        for (String n : List.of("1", "2")) {
            assertEquals(image("taskmanager-" + n), podContainers.get("taskmanager").get("image"));
            assertEquals(image("worker-" + n), podContainers.get("worker").get("image"));
        }
    }

    @Test
    void theWorkerHasTheSameEnvironmentAndNoPort() {
        for (String n : List.of("1", "2")) {
            assertEquals(map(service("worker-" + n), "environment"), podEnvironment("worker"));
            assertFalse(service("worker-" + n).containsKey("ports"));
        }
        assertFalse(podContainers.get("worker").containsKey("ports"), "the worker's control endpoint stays in the pod");
        for (String name : composeServices.keySet()) {
            assertEquals("host", service(name).get("network_mode"), name + " runs on the host's loopback");
        }
    }

    @Test
    void flinkIsConfiguredAlikeButForThePodsAddresses() {
        assertSameConfiguration(service("jobmanager"), "jobmanager");
        for (String n : List.of("1", "2")) {
            assertSameConfiguration(service("taskmanager-" + n), "taskmanager");
        }
    }

    @Test
    void everyFlinkProcessKeepsCheckpointsInTheOneFolderTheLoadTestsJobsName() {
        for (String name : List.of("jobmanager", "taskmanager-1", "taskmanager-2")) {
            Map<String, Object> service = service(name);
            assertTrue(lines(map(service, "environment").get("FLINK_PROPERTIES").toString())
                    .contains("execution.checkpointing.dir: " + Sandbox.CHECKPOINTS), name);
            String folder = Sandbox.CHECKPOINTS.substring("file://".length());
            assertTrue(((List<?>) service.get("volumes")).contains("checkpoints:" + folder),
                    name + " does not mount the checkpoints volume at " + folder);
        }
    }

    @Test
    void aTaskManagerAndItsWorkerShareOneSizedMemoryVolumeAndNoProcessIds() {
        String mount = "/bridge";
        for (String n : List.of("1", "2")) {
            String volume = "rings-" + n;
            assertTrue(((List<?>) service("taskmanager-" + n).get("volumes")).contains(volume + ":" + mount));
            assertEquals(List.of(volume + ":" + mount), service("worker-" + n).get("volumes"),
                    "the worker shares the ring volume and nothing else");
            Map<String, Object> options = map(map(composeVolumes, volume), "driver_opts");
            assertEquals("tmpfs", options.get("type"));
            Matcher size = Pattern.compile("size=(\\w+)").matcher((String) options.get("o"));
            assertTrue(size.find());
            assertEquals(bytes(size.group(1)), bytes(podVolume("bridge").get("sizeLimit").toString()));
            for (String service : List.of("taskmanager-" + n, "worker-" + n)) {
                assertFalse(service(service).containsKey("pid"), service + " has a PID namespace of its own");
            }
        }
        assertEquals("Memory", podVolume("bridge").get("medium"));
        // The worker mounts the ring volume and, besides, only volumes of its own (its /tmp).
        List<?> workerMounts = (List<?>) podContainers.get("worker").get("volumeMounts");
        assertTrue(workerMounts.contains(Map.of("name", "bridge", "mountPath", mount)));
        for (Object m : workerMounts) {
            String name = (String) ((Map<?, ?>) m).get("name");
            if (!name.equals("bridge")) {
                assertFalse(mountNames("taskmanager").contains(name), "the worker shares volume " + name);
            }
        }
        assertTrue(((List<?>) podContainers.get("taskmanager").get("volumeMounts"))
                .contains(Map.of("name", "bridge", "mountPath", mount)));
        assertTrue(podEnvironment("worker").get("RING_DIR").toString().startsWith(mount + "/"));
        assertEquals(Boolean.FALSE, taskManagerPod.getOrDefault("shareProcessNamespace", false));
    }

    @Test
    void everyContainerHasTheSameMemoryLimitAndARequest() {
        Map<String, String> services = Map.of("jobmanager", "jobmanager", "taskmanager-1", "taskmanager",
                "taskmanager-2", "taskmanager", "worker-1", "worker", "worker-2", "worker");
        services.forEach((service, container) -> {
            Map<String, Object> resources = map(podContainers.get(container), "resources");
            assertEquals(bytes(service(service).get("mem_limit").toString()),
                    bytes(map(resources, "limits").get("memory").toString()), service);
            assertNotNull(map(resources, "requests").get("cpu"), container);
            assertNotNull(map(resources, "requests").get("memory"), container);
        });
    }

    @Test
    void everyImageRunsItsProcessAsTheOneUnprivilegedUser() throws IOException {
        Set<String> images = new LinkedHashSet<>();
        List<Path> dockerfiles;
        try (var files = Files.list(home.resolve("deploy/sandbox/images"))) {
            dockerfiles = files.map(dir -> dir.resolve("Dockerfile")).sorted().toList();
        }
        for (Path dockerfile : dockerfiles) {
            images.add(dockerfile.getParent().getFileName().toString());
            List<String> instructions = instructions(dockerfile);
            String entrypoint = null;
            String user = null;
            for (String instruction : instructions) {
                if (instruction.startsWith("USER ")) {
                    user = instruction.substring(5).strip();
                } else if (instruction.startsWith("ENTRYPOINT ") || instruction.startsWith("CMD ")) {
                    entrypoint = instruction;
                    assertEquals(USER + ":" + USER, user, dockerfile + " runs its process as " + user);
                }
                Matcher useradd = Pattern.compile("useradd --uid (\\d+) --gid (\\d+)").matcher(instruction);
                if (useradd.find()) {
                    assertEquals(List.of(USER, USER), List.of(Integer.parseInt(useradd.group(1)),
                            Integer.parseInt(useradd.group(2))), dockerfile.toString());
                }
            }
            if (entrypoint == null) {
                // A parent image (the Java runtime): it names the user its children run as.
                assertTrue(instructions.stream().anyMatch(i -> i.contains("useradd --uid " + USER)), dockerfile.toString());
            }
        }
        // What sandbox build builds (tools/launcher/sandbox.sh; the base image is imported, and runs nothing) is these.
        Set<String> built = new LinkedHashSet<>();
        Matcher build = Pattern.compile("build_image \"?flink-bridge/([a-z-]+):")
                .matcher(Files.readString(home.resolve("tools/launcher/sandbox.sh")));
        while (build.find()) {
            built.add(build.group(1));
        }
        assertEquals(images, built, "the images sandbox build builds and the Dockerfiles in deploy/sandbox/images");
        for (String service : composeServices.keySet()) {
            String image = image(service);
            assertTrue(images.contains(image.substring("flink-bridge/".length(), image.indexOf(':'))),
                    service + " runs " + image + ", which no Dockerfile in deploy/sandbox/images builds");
        }
    }

    @Test
    void everySandboxContainerRunsUnprivilegedOnAReadOnlyRoot() {
        for (String name : composeServices.keySet()) {
            Map<String, Object> service = service(name);
            assertEquals(USER + ":" + USER, service.get("user"), name);
            assertEquals(Boolean.TRUE, service.get("read_only"), name + " has a writable root file system");
            assertEquals(List.of("ALL"), service.get("cap_drop"), name + " keeps capabilities");
            assertTrue(((List<?>) service.get("security_opt")).contains("no-new-privileges:true"),
                    name + " may gain privileges");
            for (String key : List.of("cap_add", "privileged", "pid", "ipc", "ports", "devices")) {
                assertFalse(service.containsKey(key), name + " sets " + key);
            }
        }
        for (String volume : List.of("rings-1", "rings-2")) {
            Set<String> options = Set.of(((String) map(map(composeVolumes, volume), "driver_opts").get("o")).split(","));
            assertTrue(options.containsAll(Set.of("uid=" + USER, "gid=" + USER, "mode=0700")),
                    volume + " is not the unprivileged user's alone: " + options);
        }
    }

    /**
     * On the host's network every address the sandbox's processes listen on is 127.0.0.1: Flink's (its defaults in
     * flink-container, and what the compose file sets), its Prometheus reporter's (one that takes a host) and Kafka's.
     */
    @Test
    void theSandboxListensOnLoopbackOnly() throws IOException {
        String container = Files.readString(home.resolve("deploy/sandbox/images/flink/flink-container"));
        Matcher block = Pattern.compile("defaults=\"([^\"]*)\"").matcher(container);
        assertTrue(block.find(), "flink-container has no defaults");
        Map<String, String> defaults = properties(block.group(1));
        for (String key : List.of("jobmanager.bind-host", "taskmanager.bind-host", "rest.bind-address")) {
            assertEquals(LOOPBACK, defaults.get(key), "flink-container's default " + key);
        }
        for (String name : List.of("jobmanager", "taskmanager-1", "taskmanager-2")) {
            Map<String, String> properties = properties(map(service(name), "environment").get("FLINK_PROPERTIES").toString());
            for (String key : List.of("jobmanager.bind-host", "taskmanager.bind-host", "rest.bind-address")) {
                assertEquals(LOOPBACK, properties.getOrDefault(key, defaults.get(key)), name + ": " + key);
            }
            properties.forEach((key, value) -> {
                if (key.startsWith("metrics.reporter.") && key.endsWith(".factory.class")) {
                    String reporter = key.substring(0, key.length() - ".factory.class".length());
                    assertEquals("org.apache.flink.metrics.prometheus.BoundPrometheusReporterFactory", value,
                            name + ": " + reporter + " cannot be bound to one address");
                    assertEquals(LOOPBACK, properties.get(reporter + ".host"), name + ": " + reporter + ".host");
                }
            });
        }
        Properties kafka = new Properties();
        kafka.load(new StringReader(Files.readString(home.resolve("deploy/sandbox/images/kafka/server.properties"))));
        for (String listener : kafka.getProperty("listeners").split(",")) {
            assertTrue(listener.matches("[A-Z_]+://127\\.0\\.0\\.1:\\d+"), "Kafka listens on " + listener);
        }
    }

    @Test
    void everyPodRunsAsTheSandboxsUserWithTheSameWritablePaths() {
        Map<String, String> services = Map.of("jobmanager", "jobmanager", "taskmanager-1", "taskmanager",
                "taskmanager-2", "taskmanager", "worker-1", "worker", "worker-2", "worker");
        for (String container : podContainers.keySet()) {
            Map<String, Object> pod = map(podSpecs.get(container), "securityContext");
            Map<String, Object> own = map(podContainers.get(container), "securityContext");
            for (String key : List.of("runAsUser", "runAsGroup")) {
                assertEquals(USER, own.getOrDefault(key, pod.get(key)), container + ": " + key);
            }
            assertEquals(USER, pod.get("fsGroup"), container);
            assertEquals(Boolean.TRUE, own.getOrDefault("runAsNonRoot", pod.get("runAsNonRoot")), container);
            assertEquals(Map.of("type", "RuntimeDefault"), own.getOrDefault("seccompProfile", pod.get("seccompProfile")),
                    container);
            assertEquals(Boolean.FALSE, own.get("allowPrivilegeEscalation"), container);
            assertEquals(Boolean.TRUE, own.get("readOnlyRootFilesystem"), container);
            assertEquals(Map.of("drop", List.of("ALL")), own.get("capabilities"), container);
            assertFalse(own.containsKey("privileged"), container);
        }
        services.forEach((service, container) -> {
            Set<String> writable = new LinkedHashSet<>();
            for (Object tmpfs : (List<?>) service(service).getOrDefault("tmpfs", List.of())) {
                writable.add(tmpfs.toString().split(":")[0]);
            }
            for (Object volume : (List<?>) service(service).getOrDefault("volumes", List.of())) {
                String[] parts = volume.toString().split(":");
                writable.add(parts.length == 1 ? parts[0] : parts[1]);
            }
            Set<String> mounted = new LinkedHashSet<>();
            for (Object m : (List<?>) podContainers.get(container).get("volumeMounts")) {
                mounted.add((String) ((Map<?, ?>) m).get("mountPath"));
            }
            assertEquals(writable, mounted, service + " and the pod's " + container + " write to different paths");
        });
    }

    /**
     * The NetworkPolicy lets the Flink Bridge pods reach one another, and lets in from anywhere else only the REST
     * port and the Prometheus ports, each from pods with a label of their own.
     */
    @Test
    @SuppressWarnings("unchecked")
    void aNetworkPolicyLetsInOnlyTheBridgesPodsAndLabelledClientsOfRestAndMetrics() {
        assertNotNull(networkPolicy, "the manifest has no NetworkPolicy");
        Map<String, Object> spec = map(networkPolicy, "spec");
        assertEquals(Map.of("matchLabels", Map.of("app", "flink-bridge")), spec.get("podSelector"));
        assertTrue(((List<?>) spec.get("policyTypes")).contains("Ingress"));
        Map<Set<Object>, Object> clientsByPorts = new HashMap<>();
        for (Object r : (List<Object>) spec.get("ingress")) {
            Map<String, Object> rule = (Map<String, Object>) r;
            List<Object> from = (List<Object>) rule.get("from");
            assertNotNull(from, "a rule lets in every source: " + rule);
            if (!rule.containsKey("ports")) {
                assertEquals(List.of(Map.of("podSelector", Map.of("matchLabels", Map.of("app", "flink-bridge")))), from,
                        "a rule lets in more than the bridge's pods on every port");
                continue;
            }
            Set<Object> ports = new LinkedHashSet<>();
            for (Object p : (List<Object>) rule.get("ports")) {
                Map<String, Object> port = (Map<String, Object>) p;
                ports.add(port.containsKey("endPort") ? port.get("port") + "-" + port.get("endPort") : port.get("port"));
            }
            for (Object f : from) {
                Map<String, Object> source = (Map<String, Object>) f;
                assertFalse(source.containsKey("ipBlock"), "a rule lets in addresses: " + rule);
                assertFalse(map(source, "podSelector").isEmpty(), "a rule lets in every pod: " + rule);
            }
            clientsByPorts.put(ports, from);
        }
        assertEquals(Set.of(Set.of(8081), Set.of("9249-9259")), clientsByPorts.keySet());
        int rest = ((List<?>) podContainers.get("jobmanager").get("ports")).stream()
                .map(p -> (Map<?, ?>) p).filter(p -> "rest".equals(p.get("name")))
                .map(p -> (Integer) p.get("containerPort")).findFirst().orElseThrow();
        assertEquals(8081, rest);
    }

    private static Set<String> mountNames(String container) {
        Set<String> names = new LinkedHashSet<>();
        for (Object m : (List<?>) podContainers.get(container).get("volumeMounts")) {
            names.add((String) ((Map<?, ?>) m).get("name"));
        }
        return names;
    }

    /** A Dockerfile's instructions, continuation lines joined and comments left out. */
    private static List<String> instructions(Path dockerfile) throws IOException {
        List<String> instructions = new ArrayList<>();
        StringBuilder current = new StringBuilder();
        for (String line : Files.readAllLines(dockerfile)) {
            if (line.strip().startsWith("#") || line.isBlank()) {
                continue;
            }
            current.append(line.strip());
            if (line.endsWith("\\")) {
                current.setLength(current.length() - 1);
                current.append(' ');
            } else {
                instructions.add(current.toString());
                current.setLength(0);
            }
        }
        return instructions;
    }

    /** Lines of {@code key: value}, as FLINK_PROPERTIES and flink-container's defaults have them. */
    private static Map<String, String> properties(String text) {
        Map<String, String> properties = new HashMap<>();
        for (String line : lines(text)) {
            int colon = line.indexOf(':');
            properties.put(line.substring(0, colon).strip(), line.substring(colon + 1).strip());
        }
        return properties;
    }

    private static void assertSameConfiguration(Map<String, Object> service, String container) {
        Set<String> compose = lines(map(service, "environment").get("FLINK_PROPERTIES").toString());
        compose.removeIf(line -> POD_ADDRESS_KEYS.contains(line.substring(0, line.indexOf(':'))));
        Set<String> pod = lines(podEnvironment(container).get("FLINK_PROPERTIES").toString());
        assertTrue(pod.containsAll(compose), container + ": the pod leaves out " + difference(compose, pod));
        for (String line : difference(pod, compose)) {
            assertTrue(POD_ADDRESS_KEYS.contains(line.substring(0, line.indexOf(':'))),
                    container + ": the pod alone sets " + line);
        }
    }

    private static Set<String> difference(Set<String> a, Set<String> b) {
        Set<String> left = new LinkedHashSet<>(a);
        left.removeAll(b);
        return left;
    }

    private static Set<String> lines(String text) {
        Set<String> lines = new LinkedHashSet<>();
        for (String line : text.split("\n")) {
            if (!line.isBlank()) {
                lines.add(line.strip());
            }
        }
        return lines;
    }

    /** A compose image name with its variables' defaults filled in. */
    private static String image(String service) {
        return DEFAULTED.matcher(service(service).get("image").toString()).replaceAll("$1");
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> podEnvironment(String container) {
        Map<String, Object> environment = new HashMap<>();
        for (Object variable : (List<Object>) podContainers.get(container).get("env")) {
            Map<String, Object> v = (Map<String, Object>) variable;
            if (v.containsKey("value")) {
                environment.put((String) v.get("name"), v.get("value"));
            }
        }
        return environment;
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> podVolume(String name) {
        for (Object volume : (List<Object>) taskManagerPod.get("volumes")) {
            Map<String, Object> v = (Map<String, Object>) volume;
            if (v.get("name").equals(name)) {
                return map(v, "emptyDir");
            }
        }
        throw new AssertionError("the TaskManager pod has no volume " + name);
    }

    /** Docker's and Kubernetes' memory sizes in bytes: 1600m and 1600Mi are the same (Docker's units are binary). */
    private static long bytes(String size) {
        Matcher m = Pattern.compile("(\\d+)([kmgKMG])i?").matcher(size);
        assertTrue(m.matches(), "a memory size: " + size);
        int shift = switch (Character.toLowerCase(m.group(2).charAt(0))) {
            case 'k' -> 10;
            case 'm' -> 20;
            default -> 30;
        };
        return Long.parseLong(m.group(1)) << shift;
    }

    private static Map<String, Object> service(String name) {
        return map(composeServices, name);
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> map(Map<String, Object> parent, String key) {
        Object value = parent.get(key);
        assertNotNull(value, "no " + key + " in " + parent.keySet());
        return (Map<String, Object>) value;
    }
}
