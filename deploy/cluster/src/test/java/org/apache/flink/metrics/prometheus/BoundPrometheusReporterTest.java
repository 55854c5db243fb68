package org.apache.flink.metrics.prometheus;

import org.apache.flink.metrics.SimpleCounter;
import org.apache.flink.metrics.groups.UnregisteredMetricsGroup;
import org.apache.flink.metrics.reporter.MetricReporterFactory;
import org.apache.flink.util.PortRange;
import org.junit.jupiter.api.Test;

import org.apache.flink.metrics.CharacterFilter;
import org.apache.flink.metrics.LogicalScopeProvider;
import org.apache.flink.metrics.MetricGroup;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.ServiceLoader;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The reporter the sandbox's Flink serves its metrics with listens on the address it is given and no other, as the
 * kernel lists its listening sockets (/proc/net/tcp and tcp6), where Flink's own reporter listens on every address.
 */
class BoundPrometheusReporterTest {

    private static final InetAddress LOOPBACK = InetAddress.ofLiteral("127.0.0.1");
    /** A socket's state in /proc/net/tcp: listening. */
    private static final String LISTEN = "0A";

    @Test
    void listensOnLoopbackOnlyByDefaultAndServesTheMetrics() throws Exception {
        Properties config = new Properties();
        config.setProperty("port", "0");
        BoundPrometheusReporter reporter = new BoundPrometheusReporterFactory().createMetricReporter(config);
        try {
            InetSocketAddress address = reporter.address();
            assertEquals(LOOPBACK, address.getAddress());
            assertEquals(List.of(LOOPBACK), listeners(address.getPort()));

            SimpleCounter counter = new SimpleCounter();
            counter.inc(42);
            reporter.notifyOfAddedMetric(counter, "bridgeTestCount", new ScopedGroup());
            HttpResponse<String> scrape = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
                    URI.create("http://127.0.0.1:" + address.getPort() + "/metrics")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(200, scrape.statusCode());
            assertTrue(scrape.body().contains("bridgeTestCount 42.0"), scrape.body());
        } finally {
            reporter.close();
        }
    }

    /** What the sandbox's Flink would do without it: Flink's reporter takes the port on every address. */
    @Test
    void flinksOwnReporterHoldsThePortOnEveryAddress() throws Exception {
        int port;
        try (ServerSocket free = new ServerSocket(0)) {
            port = free.getLocalPort();
        }
        // Its getPort() is the port it was given, so it is given a free one rather than 0.
        PrometheusReporter flinks = new PrometheusReporter(new PortRange(Integer.toString(port)));
        try {
            List<InetAddress> listeners = listeners(flinks.getPort());
            assertEquals(1, listeners.size(), listeners.toString());
            assertTrue(listeners.getFirst().isAnyLocalAddress(), listeners.toString());
        } finally {
            flinks.close();
        }
    }

    @Test
    void takesTheFirstFreePortOfTheRangeOnTheHostItIsGiven() throws Exception {
        try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.ofLiteral("127.0.0.1"))) {
            int first = taken.getLocalPort();
            Properties config = new Properties();
            config.setProperty("host", "127.0.0.1");
            config.setProperty("port", first + "-" + (first + 20));
            BoundPrometheusReporter reporter = new BoundPrometheusReporterFactory().createMetricReporter(config);
            try {
                assertTrue(reporter.address().getPort() > first, "took " + reporter.address());
            } finally {
                reporter.close();
            }
        }
    }

    @Test
    void aHostThatIsNoAddressIsRefused() {
        Properties config = new Properties();
        config.setProperty("host", "no-such-host.invalid");
        assertThrows(IllegalArgumentException.class, () -> new BoundPrometheusReporterFactory().createMetricReporter(config));
    }

    @Test
    void flinkFindsTheFactoryAmongItsReporterFactories() {
        assertTrue(ServiceLoader.load(MetricReporterFactory.class).stream()
                .anyMatch(f -> f.type() == BoundPrometheusReporterFactory.class));
    }

    /** The addresses the kernel lists a listening TCP socket on {@code port} at, IPv4 and IPv6. */
    static List<InetAddress> listeners(int port) throws IOException {
        List<InetAddress> addresses = new ArrayList<>();
        for (String table : List.of("/proc/net/tcp", "/proc/net/tcp6")) {
            List<String> lines = Files.readAllLines(Path.of(table));
            for (String line : lines.subList(1, lines.size())) {
                String[] fields = line.strip().split("\\s+");
                String[] local = fields[1].split(":");
                if (fields[3].equals(LISTEN) && Integer.parseInt(local[1], 16) == port) {
                    addresses.add(address(local[0]));
                }
            }
        }
        return addresses;
    }

    /** An address as /proc/net/tcp writes it: 32-bit words in hex, each in the machine's (little-endian) order. */
    private static InetAddress address(String hex) throws IOException {
        byte[] bytes = new byte[hex.length() / 2];
        for (int word = 0; word < bytes.length; word += 4) {
            for (int i = 0; i < 4; i++) {
                bytes[word + i] = (byte) Integer.parseInt(hex.substring(2 * (word + 3 - i), 2 * (word + 4 - i)), 16);
            }
        }
        return InetAddress.getByAddress(bytes);
    }

    /** A metric group with the logical scope the reporter names a metric by: "test". */
    private static final class ScopedGroup extends UnregisteredMetricsGroup implements LogicalScopeProvider {
        @Override
        public String getLogicalScope(CharacterFilter filter) {
            return "test";
        }

        @Override
        public String getLogicalScope(CharacterFilter filter, char delimiter) {
            return "test";
        }

        @Override
        public MetricGroup getWrappedMetricGroup() {
            return this;
        }
    }
}
