package org.flinkbridge.chaos;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.yaml.snakeyaml.Yaml;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
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
 */
class SandboxManifestsTest {

    /** Keys only the pods set: where each process is reached on the pod network. */
    private static final Set<String> POD_ADDRESS_KEYS = Set.of("jobmanager.rpc.address", "jobmanager.bind-host",
            "rest.address", "rest.bind-address", "blob.server.port", "taskmanager.host", "taskmanager.bind-host",
            "taskmanager.rpc.port", "taskmanager.data.port");
    private static final Pattern DEFAULTED = Pattern.compile("\\$\\{[A-Z_]+:-([^}]*)}");

    private static Map<String, Object> composeServices;
    private static Map<String, Object> composeVolumes;
    private static Map<String, Map<String, Object>> podContainers;
    private static Map<String, Object> taskManagerPod;

    @BeforeAll
    @SuppressWarnings("unchecked")
    static void load() throws IOException {
        Path home = Path.of(System.getProperty("user.dir"));
        Map<String, Object> compose = new Yaml().load(Files.readString(home.resolve("deploy/sandbox/docker-compose.yml")));
        composeServices = (Map<String, Object>) compose.get("services");
        composeVolumes = (Map<String, Object>) compose.get("volumes");
        podContainers = new HashMap<>();
        for (Object document : new Yaml().loadAll(Files.readString(home.resolve("deploy/kubernetes/flink-bridge.yaml")))) {
            Map<String, Object> resource = (Map<String, Object>) document;
            if (!"Deployment".equals(resource.get("kind"))) {
                continue;
            }
            Map<String, Object> pod = map(map(map(resource, "spec"), "template"), "spec");
            for (Object container : (List<Object>) pod.get("containers")) {
                Map<String, Object> c = (Map<String, Object>) container;
                podContainers.put((String) c.get("name"), c);
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
        assertEquals(List.of(Map.of("name", "bridge", "mountPath", mount)), podContainers.get("worker").get("volumeMounts"));
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

    private static void assertSameConfiguration(Map<String, Object> service, String container) {
        Set<String> compose = lines(map(service, "environment").get("FLINK_PROPERTIES").toString());
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
