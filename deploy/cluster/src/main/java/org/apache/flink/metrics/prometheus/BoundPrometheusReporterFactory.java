package org.apache.flink.metrics.prometheus;

import org.apache.flink.metrics.reporter.MetricReporterFactory;
import org.apache.flink.util.PortRange;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.Properties;

/**
 * {@link BoundPrometheusReporter} from a reporter's configuration: {@code metrics.reporter.<name>.host} (an address,
 * 127.0.0.1 when left out) and {@code metrics.reporter.<name>.port} (a port or a range, 9249 when left out, as
 * Flink's own factory). Named by {@code metrics.reporter.<name>.factory.class} and found, like Flink's, through
 * {@code META-INF/services}.
 */
public class BoundPrometheusReporterFactory implements MetricReporterFactory {

    static final String ARG_HOST = "host";
    static final String ARG_PORT = "port";
    static final String DEFAULT_HOST = "127.0.0.1";
    static final String DEFAULT_PORT = "9249";

    @Override
    public BoundPrometheusReporter createMetricReporter(Properties properties) {
        String host = properties.getProperty(ARG_HOST, DEFAULT_HOST).strip();
        try {
            return new BoundPrometheusReporter(InetAddress.getByName(host),
                    new PortRange(properties.getProperty(ARG_PORT, DEFAULT_PORT)));
        } catch (UnknownHostException e) {
            throw new IllegalArgumentException("the Prometheus reporter's host '" + host + "' is no address", e);
        }
    }
}
