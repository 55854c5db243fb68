package org.flinkbridge.job.io;

import org.apache.flink.api.common.serialization.Encoder;
import org.apache.flink.api.connector.dsv2.DataStreamV2SinkUtils;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.connector.file.sink.FileSink;
import org.apache.flink.datastream.api.stream.NonKeyedPartitionStream;
import org.apache.flink.streaming.api.functions.sink.PrintSink;
import org.apache.flink.streaming.api.functions.sink.filesystem.bucketassigners.BasePathBucketAssigner;
import org.apache.flink.streaming.api.functions.sink.filesystem.rollingpolicies.OnCheckpointRollingPolicy;
import org.flinkbridge.kafka.AtLeastOnceKafkaSink;
import org.flinkbridge.kafka.ExactlyOnceKafkaSink;
import org.flinkbridge.pipeline.FileSinkSpec;
import org.flinkbridge.pipeline.KafkaSinkSpec;
import org.flinkbridge.pipeline.PrintSinkSpec;
import org.flinkbridge.pipeline.SinkSpec;
import org.flinkbridge.records.BridgeRecord;

/** Turns the pipeline file's sinks into Flink sinks. */
public final class Sinks {

    private Sinks() {}

    /** Attaches the sink to {@code stream}; {@code path}, when set, replaces a file sink's path. */
    public static void attach(NonKeyedPartitionStream<BridgeRecord> stream, SinkSpec spec, String path) {
        attach(stream, spec, path, new PayloadLines());
    }

    /**
     * Attaches the pipeline's dead-letters sink: a file gets each dead letter as a JSON line with its headers,
     * which name the step and the error (other sinks carry headers already).
     */
    public static void attachDeadLetters(NonKeyedPartitionStream<BridgeRecord> stream, SinkSpec spec) {
        attach(stream, spec, null, new DeadLetterLines());
    }

    private static void attach(NonKeyedPartitionStream<BridgeRecord> stream, SinkSpec spec, String path,
                               Encoder<BridgeRecord> lines) {
        Sink<BridgeRecord> sink = switch (spec) {
            case FileSinkSpec file -> FileSink.forRowFormat(
                            new org.apache.flink.core.fs.Path(path == null ? file.path() : path), lines)
                    .withBucketAssigner(new BasePathBucketAssigner<>())
                    // Output becomes visible at every checkpoint (and at the end of input), not at a size.
                    .withRollingPolicy(OnCheckpointRollingPolicy.build())
                    .build();
            case PrintSinkSpec print -> new PrintSink<>(print.name());
            case KafkaSinkSpec kafka -> switch (kafka.delivery()) {
                case AT_LEAST_ONCE -> new AtLeastOnceKafkaSink(kafka);
                case EXACTLY_ONCE -> new ExactlyOnceKafkaSink(kafka);
            };
        };
        // A fixed uid, so that a sink's state (a Kafka sink's transactions) is restored after the graph changes.
        stream.toSink(DataStreamV2SinkUtils.wrapSink(sink)).withName("sink " + spec.name())
                .withUid("sink-" + spec.name());
    }

    /** One record per line: the payload bytes, then a newline. */
    private static final class PayloadLines implements Encoder<BridgeRecord> {
        @Override
        public void encode(BridgeRecord record, java.io.OutputStream out) throws java.io.IOException {
            out.write(record.payload);
            out.write('\n');
        }
    }
}
