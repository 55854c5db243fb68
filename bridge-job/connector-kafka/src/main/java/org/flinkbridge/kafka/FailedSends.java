package org.flinkbridge.kafka;

import org.apache.kafka.clients.producer.Callback;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.flinkbridge.pipeline.KafkaSinkSpec;

import java.io.IOException;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The callback of every send: remembers the first that failed (on the producer's I/O thread), so that the
 * writer's next write or flush fails with it. Nothing after a failed record counts as written.
 */
final class FailedSends implements Callback {

    private final String sink;
    private final AtomicReference<Exception> first = new AtomicReference<>();

    FailedSends(KafkaSinkSpec spec) {
        this.sink = "kafka sink '" + spec.name() + "' (topic " + spec.topic() + " at " + spec.bootstrapServers() + ")";
    }

    @Override
    public void onCompletion(RecordMetadata metadata, Exception failure) {
        if (failure != null) {
            first.compareAndSet(null, failure);
        }
    }

    void throwIfAny() throws IOException {
        Exception failure = first.get();
        if (failure != null) {
            throw new IOException(sink + " could not write a record: " + failure, failure);
        }
    }
}
