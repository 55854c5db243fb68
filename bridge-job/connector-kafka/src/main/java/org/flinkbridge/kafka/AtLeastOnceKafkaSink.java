package org.flinkbridge.kafka;

import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.flinkbridge.pipeline.Delivery;
import org.flinkbridge.pipeline.KafkaSinkSpec;
import org.flinkbridge.records.BridgeRecord;

/**
 * Writes every record to Kafka as it comes; before each checkpoint's barrier and at the end of input the
 * writer waits until the broker has acknowledged all of them, so a restart from the checkpoint loses none.
 */
public final class AtLeastOnceKafkaSink implements Sink<BridgeRecord> {

    private final KafkaSinkSpec spec;

    public AtLeastOnceKafkaSink(KafkaSinkSpec spec) {
        if (spec.delivery() != Delivery.AT_LEAST_ONCE) {
            throw new IllegalArgumentException("kafka sink " + spec.name() + " is " + spec.delivery().configName()
                    + ", not " + Delivery.AT_LEAST_ONCE.configName());
        }
        this.spec = spec;
    }

    @Override
    public SinkWriter<BridgeRecord> createWriter(WriterInitContext context) {
        return new AtLeastOnceKafkaWriter(spec);
    }
}
