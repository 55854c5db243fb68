package org.apache.flink.metrics.prometheus;

import io.prometheus.client.exporter.HTTPServer;
import org.apache.flink.util.PortRange;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.Iterator;

/**
 * Flink's Prometheus reporter, served on one address: {@link PrometheusReporter} listens on every address of the
 * machine (it has a port option and no host option), which on the sandbox's host network would put every metric on
 * every interface. This one takes the first free port of the range on {@code host} only. It lives in Flink's
 * package because the registry it serves, {@link AbstractPrometheusReporter#registry}, is package-private there.
 */
public class BoundPrometheusReporter extends AbstractPrometheusReporter {

    private final HTTPServer httpServer;
    private final InetAddress host;

    BoundPrometheusReporter(InetAddress host, PortRange ports) {
        HTTPServer server = null;
        IOException last = null;
        for (Iterator<Integer> it = ports.getPortsIterator(); it.hasNext() && server == null; ) {
            InetSocketAddress candidate = new InetSocketAddress(host, it.next());
            try {
                server = new HTTPServer(candidate, registry);
            } catch (IOException e) {
                log.debug("Could not start the Prometheus HTTP server on {}.", candidate, e);
                last = e;
            }
        }
        if (server == null) {
            throw new RuntimeException("Could not start the Prometheus HTTP server on " + host.getHostAddress()
                    + " at any port of " + ports, last);
        }
        this.httpServer = server;
        this.host = host;
        log.info("Started the Prometheus HTTP server on {}:{}.", host.getHostAddress(), server.getPort());
    }

    /** Where the metrics are served. */
    InetSocketAddress address() {
        return new InetSocketAddress(host, httpServer.getPort());
    }

    @Override
    public void close() {
        httpServer.stop();
        super.close();
    }
}
