package org.flinkbridge.job.io;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.connector.dsv2.DataStreamV2SourceUtils;
import org.apache.flink.api.connector.source.util.ratelimit.RateLimiterStrategy;
import org.apache.flink.connector.datagen.source.DataGeneratorSource;
import org.apache.flink.connector.file.src.FileSource;
import org.apache.flink.connector.file.src.reader.TextLineInputFormat;
import org.apache.flink.datastream.api.ExecutionEnvironment;
import org.apache.flink.datastream.api.common.Collector;
import org.apache.flink.datastream.api.context.PartitionedContext;
import org.apache.flink.datastream.api.function.OneInputStreamProcessFunction;
import org.apache.flink.datastream.api.stream.NonKeyedPartitionStream;
import org.flinkbridge.kafka.KafkaSources;
import org.flinkbridge.pipeline.FileSourceSpec;
import org.flinkbridge.pipeline.GeneratorSourceSpec;
import org.flinkbridge.pipeline.KafkaSourceSpec;
import org.flinkbridge.pipeline.SourceSpec;

import java.time.Duration;
import org.flinkbridge.records.BridgeRecord;

/** Turns the pipeline file's sources into Flink sources of {@link BridgeRecord}s. */
public final class Sources {

    private Sources() {}

    public static NonKeyedPartitionStream.ProcessConfigurableAndNonKeyedPartitionStream<BridgeRecord> create(
            ExecutionEnvironment env, SourceSpec spec) {
        return switch (spec) {
            case GeneratorSourceSpec generator -> env.fromSource(
                    DataStreamV2SourceUtils.wrapSource(generator(generator)), "source " + spec.name());
            case FileSourceSpec file -> env.fromSource(DataStreamV2SourceUtils.wrapSource(file(file)),
                            "source " + spec.name())
                    .process(new LinesToRecords())
                    .withName("decode " + spec.name());
            case KafkaSourceSpec kafka -> env.fromSource(
                    DataStreamV2SourceUtils.wrapSource(KafkaSources.of(kafka)), "source " + spec.name());
        };
    }

    private static DataGeneratorSource<BridgeRecord> generator(GeneratorSourceSpec spec) {
        long count = spec.count() == null ? Long.MAX_VALUE : spec.count();
        RateLimiterStrategy<?> rate = spec.rate() == 0
                ? RateLimiterStrategy.noOp()
                : RateLimiterStrategy.perSecond(spec.rate());
        return new DataGeneratorSource<>(new GeneratedEvents(spec.keys(), spec.seed()), count, rate,
                TypeInformation.of(BridgeRecord.class));
    }

    private static FileSource<String> file(FileSourceSpec spec) {
        FileSource.FileSourceBuilder<String> builder = FileSource.forRecordStreamFormat(
                new TextLineInputFormat(), new org.apache.flink.core.fs.Path(spec.path()));
        if (spec.monitorIntervalMs() > 0) {
            builder.monitorContinuously(Duration.ofMillis(spec.monitorIntervalMs()));
        }
        return builder.build();
    }

    /** A text line becomes a record's payload; its event time is when it was read. */
    private static final class LinesToRecords implements OneInputStreamProcessFunction<String, BridgeRecord> {
        @Override
        public void processRecord(String line, Collector<BridgeRecord> output,
                                  PartitionedContext<BridgeRecord> ctx) {
            long now = System.currentTimeMillis();
            output.collectAndOverwriteTimestamp(BridgeRecord.ofUtf8(line, now), now);
        }
    }
}
