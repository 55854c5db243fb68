package org.flinkbridge.bridge.function;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.dag.Transformation;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.ExecutionOptions;
import org.apache.flink.core.memory.ManagedMemoryUseCase;
import org.apache.flink.datastream.api.stream.KeyedPartitionStream;
import org.apache.flink.datastream.api.stream.NonKeyedPartitionStream.ProcessConfigurableAndNonKeyedPartitionStream;
import org.apache.flink.datastream.api.stream.NonKeyedPartitionStream;
import org.apache.flink.datastream.impl.attribute.AttributeParser;
import org.apache.flink.datastream.impl.stream.AbstractDataStream;
import org.apache.flink.datastream.impl.stream.KeyedPartitionStreamImpl;
import org.apache.flink.datastream.impl.stream.NonKeyedPartitionStreamImpl;
import org.apache.flink.datastream.impl.stream.ProcessConfigurableAndNonKeyedPartitionStreamImpl;
import org.apache.flink.datastream.impl.utils.StreamUtils;
import org.apache.flink.streaming.api.transformations.OneInputTransformation;
import org.apache.flink.streaming.api.transformations.SideOutputTransformation;
import org.apache.flink.util.OutputTag;
import org.flinkbridge.bridge.BridgeOptions;
import org.flinkbridge.records.BridgeRecord;

/**
 * Applies a {@link BridgeFunction} to a stream, as {@code stream.process(function)} would, but through
 * {@link BridgeOperators}, so the function gets its task's mailbox, and, with recovery in place, declares the
 * operator's use of managed memory, in which its journal is counted ({@link ManagedJournalMemory}); and flushes the
 * exchange into a keyed segment whose steps close by processing time sooner than Flink's default.
 */
public final class BridgeStreams {

    private static final TypeInformation<BridgeRecord> TYPE = TypeInformation.of(BridgeRecord.class);
    /** The side output of a segment's operator: the records its dead-letter steps failed on ({@link DeadLetters}). */
    public static final OutputTag<BridgeRecord> DEAD_LETTERS = new OutputTag<>("flink-bridge-dead-letters", TYPE);

    private BridgeStreams() {}

    public static ProcessConfigurableAndNonKeyedPartitionStream<BridgeRecord> process(
            NonKeyedPartitionStream<BridgeRecord> input, BridgeFunction function) {
        AbstractDataStream<BridgeRecord> in =
                input instanceof ProcessConfigurableAndNonKeyedPartitionStreamImpl<BridgeRecord> configurable
                        ? configurable.getNonKeyedPartitionStream()
                        : (NonKeyedPartitionStreamImpl<BridgeRecord>) input;
        return added(in, function, StreamUtils.getOneInputTransformation("Process", in, TYPE,
                new BridgeOperators.NonKeyed(function)));
    }

    public static <K> ProcessConfigurableAndNonKeyedPartitionStream<BridgeRecord> process(
            KeyedPartitionStream<K, BridgeRecord> input, BridgeFunction function) {
        KeyedPartitionStreamImpl<K, BridgeRecord> in = (KeyedPartitionStreamImpl<K, BridgeRecord>) input;
        if (function.closesByProcessingTime()) {
            flushSooner(in);
        }
        return added(in, function, StreamUtils.getOneInputKeyedTransformation("KeyedProcess", in, TYPE,
                new BridgeOperators.Keyed<K>(function), in.getKeySelector(), in.getKeyType()));
    }

    /**
     * A keyed segment whose steps close by processing time counts from when a record reaches it: on a quiet stream,
     * Flink's buffer timeout on the exchange into it (100 ms by default) would come on top of a batch's
     * {@code max_wait_ms}. The stream's producer flushes after {@link BridgeOptions#PROCESSING_TIME_BUFFER_TIMEOUT}
     * instead, or the job's own buffer timeout where that is shorter (docs/performance.md, "Timers"). Flink keeps a
     * buffer timeout per producing operator, so its other outputs, if any, flush as soon.
     */
    private static void flushSooner(KeyedPartitionStreamImpl<?, BridgeRecord> keyed) {
        Configuration config = keyed.getEnvironment().getConfiguration();
        long millis = config.get(BridgeOptions.PROCESSING_TIME_BUFFER_TIMEOUT).toMillis();
        if (config.get(ExecutionOptions.BUFFER_TIMEOUT_ENABLED)) {
            millis = Math.min(millis, config.get(ExecutionOptions.BUFFER_TIMEOUT).toMillis());
        }
        Transformation<?> producer = keyed.getTransformation().getInputs().getFirst();
        long own = producer.getBufferTimeout();
        producer.setBufferTimeout(own < 0 ? millis : Math.min(own, millis));
    }

    /** The dead letters of a segment that {@link #process} applied. */
    public static NonKeyedPartitionStream<BridgeRecord> deadLetters(
            ProcessConfigurableAndNonKeyedPartitionStream<BridgeRecord> segment) {
        NonKeyedPartitionStreamImpl<BridgeRecord> stream =
                ((ProcessConfigurableAndNonKeyedPartitionStreamImpl<BridgeRecord>) segment).getNonKeyedPartitionStream();
        return new NonKeyedPartitionStreamImpl<>(stream.getEnvironment(),
                new SideOutputTransformation<>(stream.getTransformation(), DEAD_LETTERS));
    }

    private static ProcessConfigurableAndNonKeyedPartitionStream<BridgeRecord> added(
            AbstractDataStream<BridgeRecord> in, BridgeFunction function,
            OneInputTransformation<BridgeRecord, BridgeRecord> transformation) {
        transformation.setAttribute(AttributeParser.parseAttribute(function));
        // Weighed as Flink's table planner weighs its operators: by the MiB they may use. The weight splits the
        // slot's managed memory for operators (taskmanager.memory.managed.consumer-weights: OPERATOR) among those
        // in the slot, so every segment of a job, whose journals share one bound, gets an equal part.
        int weight = function.journalWeight();
        if (weight > 0) {
            transformation.declareManagedMemoryUseCaseAtOperatorScope(ManagedMemoryUseCase.OPERATOR, weight);
        }
        in.getEnvironment().addOperator(transformation);
        return StreamUtils.wrapWithConfigureHandle(new NonKeyedPartitionStreamImpl<>(in.getEnvironment(),
                transformation));
    }
}
