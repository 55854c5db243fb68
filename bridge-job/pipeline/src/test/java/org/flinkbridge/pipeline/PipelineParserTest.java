package org.flinkbridge.pipeline;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.flinkbridge.pipeline.PipelineRefusals.assertRefused;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PipelineParserTest {

    /** The steps and sinks that the source-focused cases below share. */
    private static final String STEPS_AND_SINKS = """
            steps: [{step_name: s, type: filter}]
            sinks: {out: {type: print}}
            """;

    @TempDir
    Path dir;

    /**
     * Aliases nested in aliases: 600 bytes that expand to 3^17 values in a step's config. Each level has few
     * aliases, so YAML's own alias limit lets it through; building the config must stop it with one line.
     */
    @Test
    void aConfigOfNestedAliasesIsRefusedBeforeItExhaustsTheHeap() throws Exception {
        StringBuilder yaml = new StringBuilder("""
                sources: {events: {type: generator}}
                sinks: {out: {type: print}}
                steps:
                  - step_name: s
                    type: append_field
                    config:
                      l0: &l0 [x, x, x]
                """);
        for (int level = 1; level < 16; level++) {
            String previous = "*l" + (level - 1);
            yaml.append("      l").append(level).append(": &l").append(level).append(" [").append(previous)
                    .append(", ").append(previous).append(", ").append(previous).append("]\n");
        }
        Path file = Files.writeString(dir.resolve("aliases.yaml"), yaml);

        PipelineException error = assertThrows(PipelineException.class, () -> PipelineParser.parse(file));

        assertEquals(1, error.getMessage().lines().count(), error.getMessage());
        assertTrue(error.getMessage().startsWith(file + ": steps[0].config."), error.getMessage());
        assertTrue(error.getMessage().endsWith("expected at most " + YamlNode.MAX_CONFIG_VALUES + " values in a step's"
                + " config once its aliases are expanded but found more (aliases nested in aliases)"), error.getMessage());
    }

    @Test
    void bundledExampleParsesIntoTheExpectedModel() {
        Path file = repositoryFile("docs/examples/pipeline.yaml");

        Pipeline pipeline = PipelineParser.parse(file);

        Map<String, Object> appendConfig = new LinkedHashMap<>();
        appendConfig.put("field", "processed");
        appendConfig.put("value", true);
        Map<String, Object> batchConfig = new LinkedHashMap<>();
        batchConfig.put("max_count", 100L);
        batchConfig.put("max_wait_ms", 60_000L);
        Pipeline expected = new Pipeline("example", file,
                List.of(new GeneratorSourceSpec("events", 100_000L, 0, 100, 42)),
                List.of(new SegmentSpec(0, "main", List.of(
                        new StepSpec("add_processed", "append_field", appendConfig),
                        new StepSpec("batch", "batch", batchConfig)))),
                List.of(new FileSinkSpec("files", Path.of("out/example").toAbsolutePath().toString())),
                new BridgeSettings(TransportMode.SHM, null, new KeySpec(KeyKind.JSON_FIELD, "key"), 2,
                        1024, 30_000, 0, false, WorkerLanguage.JAVA, WorkerRecovery.IN_PLACE, 30_000));
        assertEquals(expected, pipeline);
        assertTrue(pipeline.sources().getFirst().bounded());
        List<StepSpec> steps = pipeline.segments().getFirst().steps();
        assertEquals("{\"field\":\"processed\",\"value\":true}", steps.get(0).configJson());
        assertEquals("{\"max_count\":100,\"max_wait_ms\":60000}", steps.get(1).configJson());
    }

    @Test
    void defaultsApplyToOmittedKeys() throws IOException {
        Path file = write("minimal.yml", """
                sources: {events: {type: generator}}
                steps: [{step_name: keep, type: filter}]
                sinks: {console: {type: print}}
                """);

        Pipeline pipeline = PipelineParser.parse(file);

        assertEquals("minimal", pipeline.name(), "the name defaults to the file name without extension");
        assertEquals(file, pipeline.file());
        GeneratorSourceSpec events = (GeneratorSourceSpec) pipeline.sources().getFirst();
        assertEquals(new GeneratorSourceSpec("events", null, 0, 100, 0), events);
        assertFalse(events.bounded(), "a generator without count is unbounded");
        StepSpec keep = new StepSpec("keep", "filter", Map.of());
        assertEquals(List.of(new SegmentSpec(0, "main", List.of(keep))), pipeline.segments());
        assertEquals("{}", keep.configJson());
        assertEquals(List.of(new PrintSinkSpec("console")), pipeline.sinks());
        assertEquals(new BridgeSettings(TransportMode.SHM, null, null, 1, 1024, 30_000, 0, false, WorkerLanguage.JAVA,
                        WorkerRecovery.IN_PLACE, 30_000),
                pipeline.bridge());
        assertEquals(BridgeSettings.defaults(), pipeline.bridge());
    }

    @Test
    void nullValuesMeanTheDefault() throws IOException {
        Pipeline pipeline = PipelineParser.parse(write("nulls.yaml", """
                name: nulls
                sources: {events: {type: generator, count: ~, rate: }}
                steps: [{step_name: keep, type: filter, config: ~, segment: ~}]
                sinks: {console: {type: print}}
                bridge: ~
                """));

        assertEquals(new GeneratorSourceSpec("events", null, 0, 100, 0), pipeline.sources().getFirst());
        assertEquals(new SegmentSpec(0, "main", List.of(new StepSpec("keep", "filter", Map.of()))),
                pipeline.segments().getFirst());
        assertEquals(BridgeSettings.defaults(), pipeline.bridge());
    }

    @Test
    void kafkaSourceDefaultsAndAllKeys() throws IOException {
        Pipeline pipeline = PipelineParser.parse(write("kafka.yaml", """
                name: orders
                sources:
                  plain: {type: kafka, bootstrap_servers: 127.0.0.1:9092, topic: events}
                  tuned:
                    type: kafka
                    bootstrap_servers: broker-1:9092,broker-2:9092
                    topic: payments
                    group_id: my-group
                    starting_offsets: committed
                    bounded: true
                    properties:
                      max.poll.records: 500
                      client.id: bridge
                """ + STEPS_AND_SINKS));

        assertEquals(List.of(
                new KafkaSourceSpec("plain", "127.0.0.1:9092", "events", "flink-bridge-orders",
                        StartingOffsets.EARLIEST, false, Map.of()),
                new KafkaSourceSpec("tuned", "broker-1:9092,broker-2:9092", "payments", "my-group",
                        StartingOffsets.COMMITTED, true, Map.of("max.poll.records", "500", "client.id", "bridge"))),
                pipeline.sources());
    }

    /** The form the sentry_streams Flink adapter writes (yaml.dump: keys sorted, lists as block items). */
    @Test
    void sentryStreamsFilesRunUnchanged() throws IOException {
        Pipeline pipeline = PipelineParser.parse(write("sentry.yaml", """
                sinks:
                  mysink:
                    bootstrap_servers:
                    - 127.0.0.1:9092
                    stream_name: transformed-events
                sources:
                  myinput:
                    bootstrap_servers:
                    - 127.0.0.1:9092
                    - 127.0.0.2:9092
                    starts_segment: true
                    stream_name: events
                steps:
                - config: {}
                  step_name: parser
                - config:
                    batch_size: 2
                    batch_timedelta:
                      seconds: 20
                  step_name: mybatch
                """));

        assertEquals(List.of(new KafkaSourceSpec("myinput", "127.0.0.1:9092,127.0.0.2:9092", "events",
                "flink-bridge-sentry", StartingOffsets.EARLIEST, false, Map.of())), pipeline.sources());
        assertEquals(List.of(new KafkaSinkSpec("mysink", "127.0.0.1:9092", "transformed-events",
                Delivery.AT_LEAST_ONCE, null, Map.of(), null)), pipeline.sinks());
        assertEquals(List.of(
                new SegmentSpec(0, "parser", List.of(new StepSpec("parser", StepSpec.WORKER_SEGMENT, Map.of()))),
                new SegmentSpec(1, "mybatch", List.of(new StepSpec("mybatch", StepSpec.WORKER_SEGMENT,
                        Map.of("batch_size", 2L, "batch_timedelta", Map.of("seconds", 20L)))))),
                pipeline.segments());
    }

    @Test
    void stepsWithoutATypeSplitTypedStepsIntoSegments() throws IOException {
        Pipeline pipeline = PipelineParser.parse(write("mixed.yaml", """
                sources: {events: {type: generator}}
                steps:
                  - {step_name: a, type: filter}
                  - {step_name: own}
                  - {step_name: b, type: filter, segment: rest}
                  - {step_name: c, type: filter, segment: rest}
                sinks: {out: {type: print}}
                """));

        assertEquals(List.of("main", "own", "rest"), pipeline.segments().stream().map(SegmentSpec::name).toList());
        assertEquals(List.of(0, 1, 2), pipeline.segments().stream().map(SegmentSpec::id).toList());
        assertEquals(2, pipeline.segments().get(2).steps().size());
    }

    @Test
    void kafkaSinkDefaultsAndAllKeys() throws IOException {
        Pipeline pipeline = PipelineParser.parse(write("kafka-out.yaml", """
                name: orders
                sources: {events: {type: generator}}
                steps: [{step_name: s, type: filter}]
                sinks:
                  plain: {type: kafka, bootstrap_servers: 127.0.0.1:9092, topic: out}
                  once:
                    type: kafka
                    bootstrap_servers: broker-1:9092,broker-2:9092
                    topic: payments
                    delivery: exactly_once
                    properties: {transaction.timeout.ms: 900000, compression.type: zstd}
                    key: {header: tenant}
                  named:
                    type: kafka
                    bootstrap_servers: h:1
                    topic: t
                    delivery: exactly_once
                    transactional_id_prefix: payments-v2
                    key: {json_field: id}
                bridge: {checkpoint_interval_ms: 1000}
                """));

        assertEquals(List.of(
                new KafkaSinkSpec("plain", "127.0.0.1:9092", "out", Delivery.AT_LEAST_ONCE, null, Map.of(), null),
                new KafkaSinkSpec("once", "broker-1:9092,broker-2:9092", "payments", Delivery.EXACTLY_ONCE,
                        "flink-bridge-orders-once",
                        Map.of("transaction.timeout.ms", "900000", "compression.type", "zstd"),
                        new KeySpec(KeyKind.HEADER, "tenant")),
                new KafkaSinkSpec("named", "h:1", "t", Delivery.EXACTLY_ONCE, "payments-v2", Map.of(),
                        new KeySpec(KeyKind.JSON_FIELD, "id"))),
                pipeline.sinks());
        assertTrue(pipeline.sinks().get(1).needsCheckpoints());
        assertFalse(pipeline.sinks().get(0).needsCheckpoints());
    }

    @Test
    void exactlyOnceKafkaSinkNeedsCheckpointsAndAPrefixAlsoInCode() throws IOException {
        Pipeline pipeline = PipelineParser.parse(write("plain.yaml", """
                sources: {events: {type: generator}}
                steps: [{step_name: s, type: filter}]
                sinks: {out: {type: print}}
                """));
        KafkaSinkSpec exactlyOnce = new KafkaSinkSpec("k", "h:1", "t", Delivery.EXACTLY_ONCE, "p", Map.of(), null);

        IllegalArgumentException noCheckpoints = assertThrows(IllegalArgumentException.class,
                () -> new Pipeline(pipeline.name(), pipeline.file(), pipeline.sources(), pipeline.segments(),
                        List.of(exactlyOnce), pipeline.bridge()));
        assertEquals("sink k needs checkpointing, but the checkpoint interval is 0 (off)", noCheckpoints.getMessage());
        IllegalArgumentException noPrefix = assertThrows(IllegalArgumentException.class,
                () -> new KafkaSinkSpec("k", "h:1", "t", Delivery.EXACTLY_ONCE, null, Map.of(), null));
        assertEquals("kafka transactional id prefix must be a non-empty string but was null", noPrefix.getMessage());
        IllegalArgumentException reserved = assertThrows(IllegalArgumentException.class,
                () -> new KafkaSinkSpec("k", "h:1", "t", Delivery.AT_LEAST_ONCE, null,
                        Map.of("transactional.id", "x"), null));
        assertEquals("kafka sink property transactional.id is made from transactional_id_prefix, the subtask and the"
                + " checkpoint, not in properties", reserved.getMessage());
        assertEquals(Delivery.EXACTLY_ONCE, Delivery.parse("exactly_once"));
    }

    @Test
    void fileSourcesAndSinksResolveRelativePathsAgainstTheWorkingDirectory() throws IOException {
        Pipeline pipeline = PipelineParser.parse(write("files.yaml", """
                sources:
                  relative: {type: file, path: data/../data/input}
                  absolute: {type: file, path: /var/data, monitor_interval_ms: 500}
                  remote: {type: file, path: "hdfs://namenode:8020/events"}
                steps: [{step_name: s, type: filter}]
                sinks:
                  local: {type: file, path: out/x}
                  remote: {type: file, path: "s3://bucket/out"}
                """));

        String cwd = Path.of("").toAbsolutePath().toString();
        assertEquals(List.of(
                new FileSourceSpec("relative", cwd + "/data/input", 0),
                new FileSourceSpec("absolute", "/var/data", 500),
                new FileSourceSpec("remote", "hdfs://namenode:8020/events", 0)), pipeline.sources());
        assertTrue(pipeline.sources().get(0).bounded());
        assertFalse(pipeline.sources().get(1).bounded(), "a monitored directory is unbounded");
        assertEquals(List.of(new FileSinkSpec("local", cwd + "/out/x"), new FileSinkSpec("remote", "s3://bucket/out")),
                pipeline.sinks());
    }

    @Test
    void segmentsGetIdsInOrderOfFirstAppearance() throws IOException {
        Pipeline pipeline = PipelineParser.parse(write("segments.yaml", """
                sources: {events: {type: generator}}
                steps:
                  - {step_name: a, type: filter}
                  - {step_name: b, type: count, segment: enrich}
                  - {step_name: c, type: batch, segment: enrich}
                  - {step_name: d, type: com.example.Score, segment: score}
                sinks: {console: {type: print}}
                """));

        assertEquals(List.of(
                new SegmentSpec(0, "main", List.of(new StepSpec("a", "filter", Map.of()))),
                new SegmentSpec(1, "enrich", List.of(new StepSpec("b", "count", Map.of()),
                        new StepSpec("c", "batch", Map.of()))),
                new SegmentSpec(2, "score", List.of(new StepSpec("d", "com.example.Score", Map.of())))),
                pipeline.segments());
    }

    @Test
    void stepConfigKeepsJsonValuesInTheFileOrder() throws IOException {
        Pipeline pipeline = PipelineParser.parse(write("config.yaml", """
                sources: {events: {type: generator}}
                steps:
                  - step_name: first
                    type: com.example.Step
                    config: &common {retries: 3, verbose: no}
                  - step_name: second
                    type: com.example.Step
                    config:
                      <<: *common
                      zeta: 1_000
                      alpha: [1.5, "two", null, {nested: 0x10}]
                      when: 2024-01-02
                      big: 123456789012345678901234567890
                      text: "true"
                sinks: {console: {type: print}}
                """));

        List<StepSpec> steps = pipeline.segments().getFirst().steps();
        assertEquals("{\"retries\":3,\"verbose\":false}", steps.get(0).configJson());
        assertEquals("{\"zeta\":1000,\"alpha\":[1.5,\"two\",null,{\"nested\":16}],\"when\":\"2024-01-02\","
                + "\"big\":123456789012345678901234567890,\"text\":\"true\",\"retries\":3,\"verbose\":false}",
                steps.get(1).configJson());
    }

    @Test
    void bridgeSectionReadsEveryKey() throws IOException {
        Pipeline pipeline = PipelineParser.parse(write("bridge.yaml", """
                sources: {events: {type: generator}}
                steps: [{step_name: s, type: filter}]
                sinks: {console: {type: print}}
                bridge:
                  transport: grpc
                  grpc_mode: compat
                  worker_address: 127.0.0.1:50051
                  key: {header: tenant}
                  parallelism: 4
                  max_in_flight: 64
                  worker_timeout_ms: 5000
                  checkpoint_interval_ms: 10
                  accept_at_least_once: true
                  worker: python
                  worker_recovery: failover
                  worker_restart_timeout_ms: 7000
                """));

        assertEquals(new BridgeSettings(TransportMode.GRPC_COMPAT, "127.0.0.1:50051",
                new KeySpec(KeyKind.HEADER, "tenant"), 4, 64, 5000, 10, true, WorkerLanguage.PYTHON,
                WorkerRecovery.FAILOVER, 7000),
                pipeline.bridge());
    }

    /**
     * Steps that may keep state, over the prototype's service, with checkpointing on: not exactly-once, so
     * refused (in the file, and when the command line switches to compat) unless at-least-once is accepted.
     */
    @Test
    void compatModeWithCheckpointsAndStatefulStepsIsRefusedUnlessAtLeastOnceIsAccepted() throws IOException {
        String compat = """
                sources: {events: {type: generator}}
                steps:
                  - {step_name: mark, type: append_field}
                  - {step_name: counts, type: running_count}
                  - {step_name: mine, type: com.example.MyStep}
                sinks: {console: {type: print}}
                bridge: {transport: grpc, grpc_mode: compat, checkpoint_interval_ms: 1000%s}
                """;
        Path refused = write("refused.yaml", compat.formatted(""));

        assertRefused(refused, "grpc_mode compat (the prototype's unary service) has no checkpoint barriers and"
                + " keeps worker state out of Flink's checkpoints, so with checkpointing on the steps that may keep"
                + " state, counts (running_count), mine (com.example.MyStep), cannot be exactly-once: use transport"
                + " shm or grpc_mode stream, or set accept_at_least_once: true in the bridge section to run them at"
                + " least once");
        assertTrue(PipelineParser.parse(write("accepted.yaml", compat.formatted(", accept_at_least_once: true")))
                .bridge().acceptAtLeastOnce());
        Pipeline stream = PipelineParser.parse(write("stream.yaml", compat.formatted("").replace("compat", "stream")));
        IllegalArgumentException switched = assertThrows(IllegalArgumentException.class,
                () -> stream.withBridge(stream.bridge().overriddenBy(TransportMode.GRPC_COMPAT, null, null, null)));
        assertTrue(switched.getMessage().startsWith("grpc_mode compat (the prototype's unary service)"),
                switched.getMessage());
    }

    @Test
    void aStepMaySendTheRecordsItFailsOnToTheDeadLettersSink() throws IOException {
        Pipeline pipeline = PipelineParser.parse(write("dead-letters.yaml", """
                name: poison
                sources: {events: {type: generator}}
                steps:
                  - {step_name: parse, type: append_field, on_error: dead_letter}
                  - {step_name: keep, type: filter, on_error: fail}
                  - {step_name: count, type: running_count, config: {key_json_field: key}}
                sinks: {out: {type: print}}
                dead_letters: {type: file, path: /tmp/poison}
                """));

        assertEquals(List.of(OnError.DEAD_LETTER, OnError.FAIL, OnError.FAIL),
                pipeline.segments().getFirst().steps().stream().map(StepSpec::onError).toList());
        assertEquals(new FileSinkSpec("dead_letters", "/tmp/poison"), pipeline.deadLetters());
        assertEquals(null, PipelineParser.parse(write("none.yaml", """
                sources: {events: {type: generator}}
                steps: [{step_name: keep, type: filter}]
                sinks: {out: {type: print}}
                """)).deadLetters());
    }

    @Test
    void deadLettersAreRefusedInCompatModeWhichCannotAnswerAFailedInput() throws IOException {
        Path compat = write("compat-dead-letters.yaml", """
                sources: {events: {type: generator}}
                steps: [{step_name: parse, type: append_field, on_error: dead_letter}]
                sinks: {out: {type: print}}
                dead_letters: {type: print}
                bridge: {transport: grpc, grpc_mode: compat}
                """);

        PipelineException error = assertThrows(PipelineException.class, () -> PipelineParser.parse(compat));

        assertTrue(error.getMessage().contains("steps [parse] say on_error: dead_letter, which grpc_mode compat"),
                error.getMessage());
    }

    @Test
    void commandLineOverridesCopyTheSettings() {
        BridgeSettings file = new BridgeSettings(TransportMode.SHM, null,
                new KeySpec(KeyKind.JSON_FIELD, "key"), 2, 16, 1000, 100, false, WorkerLanguage.JAVA,
                WorkerRecovery.IN_PLACE, 5000);

        assertEquals(new BridgeSettings(TransportMode.GRPC_COMPAT, "host:1",
                        new KeySpec(KeyKind.JSON_FIELD, "key"), 8, 16, 1000, 100, false, WorkerLanguage.PYTHON,
                        WorkerRecovery.IN_PLACE, 5000),
                file.overriddenBy(file.transport().override(Transport.parse("grpc"), GrpcMode.parse("compat")),
                        "host:1", WorkerLanguage.parse("python"), 8));
        assertEquals(file, file.overriddenBy(TransportMode.SHM, null, null, null), "null keeps the file's setting");
        IllegalArgumentException zero = assertThrows(IllegalArgumentException.class,
                () -> file.overriddenBy(TransportMode.SHM, null, null, 0));
        assertEquals("parallelism must be >= 1 but was 0", zero.getMessage());
        IllegalArgumentException upper = assertThrows(IllegalArgumentException.class, () -> Transport.parse("GRPC"));
        assertEquals("expected one of shm, grpc but found 'GRPC'", upper.getMessage());
        assertEquals("json_field", KeyKind.JSON_FIELD.configName());
        assertEquals(StartingOffsets.LATEST, StartingOffsets.parse("latest"));
    }

    /** The transport and the gRPC mode become one mode; shared memory with the prototype's service is refused. */
    @Test
    void transportAndGrpcModeAreOneModeAndShmWithCompatCannotBeChosen() {
        assertEquals(TransportMode.SHM, TransportMode.of(Transport.SHM, GrpcMode.STREAM));
        assertEquals(TransportMode.GRPC_STREAM, TransportMode.of(Transport.GRPC, null));
        assertEquals("grpc (compat)", TransportMode.of(Transport.GRPC, GrpcMode.COMPAT).describe());
        assertEquals("grpc mode compat is the prototype's unary gRPC service: it needs transport grpc, not shm",
                assertThrows(IllegalArgumentException.class, () -> TransportMode.of(Transport.SHM, GrpcMode.COMPAT))
                        .getMessage());
        // --transport=shm on a compat file means shared memory; --grpc-mode=compat alone needs transport grpc.
        assertEquals(TransportMode.SHM, TransportMode.GRPC_COMPAT.override(Transport.SHM, null));
        assertEquals(TransportMode.GRPC_COMPAT, TransportMode.GRPC_COMPAT.override(Transport.GRPC, null));
        assertEquals(TransportMode.GRPC_STREAM, TransportMode.SHM.override(Transport.GRPC, null));
        assertThrows(IllegalArgumentException.class, () -> TransportMode.SHM.override(null, GrpcMode.COMPAT));
    }

    @Test
    void pipelineSurvivesJavaSerialization() throws Exception {
        Pipeline pipeline = PipelineParser.parse(repositoryFile("docs/examples/pipeline.yaml"));
        Pipeline withKafka = new Pipeline(pipeline.name(), pipeline.file(),
                List.of(pipeline.sources().getFirst(), new KafkaSourceSpec("k", "b:9092", "t", "g",
                        StartingOffsets.LATEST, true, Map.of("a", "b")), new FileSourceSpec("f", "/in", 0)),
                pipeline.segments(), List.of(pipeline.sinks().getFirst(), new PrintSinkSpec("p"),
                        new KafkaSinkSpec("out", "b:9092", "t", Delivery.AT_LEAST_ONCE, null, Map.of("acks", "1"),
                                new KeySpec(KeyKind.HEADER, "h"))),
                pipeline.bridge());

        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
            out.writeObject(withKafka);
        }
        try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
            assertEquals(withKafka, in.readObject());
        }
    }

    @Test
    void stepSpecRejectsConfigThatIsNotJson() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new StepSpec("s", "filter", Map.of("when", new Object())));
        assertEquals("step config values must be null, strings, booleans, numbers, lists or maps but s.when is a "
                + "java.lang.Object", e.getMessage());
    }

    /** Each case: the file's text, then the message after "<file>: ". */
    private static Stream<Arguments> invalidPipelines() {
        return Stream.of(
                // Unknown types name the known ones.
                Arguments.of("""
                        sources:
                          events: {type: genrator}
                        """ + STEPS_AND_SINKS,
                        "sources.events.type (line 2, column 18): expected one of generator, file, kafka but found"
                                + " the string 'genrator'"),
                Arguments.of("""
                        sources: {events: {type: generator}}
                        steps:
                          - {step_name: s, type: apend_field}
                        sinks: {out: {type: print}}
                        """,
                        "steps[0].type (line 3, column 26): expected a built-in step type (append_field, batch, filter,"
                                + " count, running_count, window) or a fully qualified class name but found the string"
                                + " 'apend_field'"),
                Arguments.of("""
                        sources: {events: {type: generator}}
                        steps: [{step_name: s, type: filter}]
                        sinks:
                          out:
                            type: kafak
                        """,
                        "sinks.out.type (line 5, column 11): expected one of file, print, kafka but found the string"
                                + " 'kafak'"),
                // Missing required keys are reported at the mapping that lacks them.
                Arguments.of("""
                        sources:
                          topic:
                            type: kafka
                            bootstrap_servers: 127.0.0.1:9092
                        """ + STEPS_AND_SINKS,
                        "sources.topic.topic (line 3, column 5): expected a topic name but found no 'topic' key"),
                Arguments.of("""
                        sources: {events: {type: generator}}
                        steps: [{step_name: s, type: filter}]
                        sinks: {files: {type: file}}
                        """,
                        "sinks.files.path (line 3, column 16): expected an output directory path but found no 'path'"
                                + " key"),
                Arguments.of("""
                        sources: {events: {type: generator}}
                        steps:
                          - type: filter
                        sinks: {out: {type: print}}
                        """,
                        "steps[0].step_name (line 3, column 5): expected a unique step name but found no 'step_name'"
                                + " key"),
                Arguments.of("""
                        sources:
                          events: {count: 5}
                        """ + STEPS_AND_SINKS,
                        "sources.events.type (line 2, column 11): expected one of generator, file, kafka (or, as"
                                + " sentry_streams writes a Kafka topic, stream_name and bootstrap_servers without a"
                                + " type) but found no 'type' key"),
                Arguments.of("""
                        sources: {events: {type: generator}}
                        steps: [{step_name: s, type: filter}]
                        sinks: {out: {type: print}}
                        bridge: {transport: shm, grpc_mode: compat}
                        """,
                        "bridge.grpc_mode (line 4, column 37): expected stream, or transport grpc for compat (the"
                                + " prototype's unary gRPC service) but found the string 'compat'"),
                // sentry_streams' form: only its keys, and a step without a type is a segment of its own.
                Arguments.of("""
                        sources:
                          events: {stream_name: e, bootstrap_servers: [h:1], topic: t}
                        """ + STEPS_AND_SINKS,
                        "sources.events.topic (line 2, column 54): expected one of the keys bootstrap_servers, stream_name,"
                                + " starts_segment but found the key 'topic'"),
                Arguments.of("""
                        sources:
                          events: {stream_name: e, bootstrap_servers: []}
                        """ + STEPS_AND_SINKS,
                        "sources.events.bootstrap_servers (line 2, column 47): expected host:port pairs,"
                                + " comma-separated or as a list but found an empty list"),
                Arguments.of("""
                        sources:
                          events: {stream_name: e, bootstrap_servers: h:1, starts_segment: maybe}
                        """ + STEPS_AND_SINKS,
                        "sources.events.starts_segment (line 2, column 68): expected true or false but found the"
                                + " string 'maybe'"),
                Arguments.of("""
                        sources: {events: {type: generator}}
                        steps:
                          - {step_name: s, segment: main}
                        sinks: {out: {type: print}}
                        """,
                        "steps[0].segment (line 3, column 29): expected no segment key: a step without a type is a"
                                + " segment of its own, served by the worker by its id but found 'main'"),
                Arguments.of("""
                        sources: {events: {type: generator}}
                        steps:
                          - {step_name: a, type: filter}
                          - {step_name: own}
                          - {step_name: b, type: filter}
                        sinks: {out: {type: print}}
                        """,
                        "steps[2].segment (line 5, column 5): expected a new segment name (a segment's steps must be"
                                + " consecutive) but found 'main' (the default), whose steps ended at steps[0]"),
                Arguments.of(STEPS_AND_SINKS,
                        "sources (line 1, column 1): expected a mapping of sources but found no 'sources' key"),
                Arguments.of("""
                        sources:
                          topic: {type: kafka, bootstrap_servers: h:1, topic: }
                        """ + STEPS_AND_SINKS,
                        "sources.topic.topic (line 2, column 54): expected a topic name but found an empty value"),
                // Wrong types and out-of-range values.
                Arguments.of("""
                        sources:
                          events:
                            type: generator
                            count: abc
                        """ + STEPS_AND_SINKS,
                        "sources.events.count (line 4, column 12): expected a non-negative integer but found the"
                                + " string 'abc'"),
                Arguments.of("""
                        sources:
                          events:
                            type: generator
                            count: -5
                        """ + STEPS_AND_SINKS,
                        "sources.events.count (line 4, column 12): expected a non-negative integer but found -5"),
                Arguments.of("""
                        sources:
                          events: {type: generator, count: "100"}
                        """ + STEPS_AND_SINKS,
                        "sources.events.count (line 2, column 36): expected a non-negative integer but found the"
                                + " string '100'"),
                Arguments.of("""
                        sources:
                          events: {type: generator, rate: 1.5, keys: 0}
                        """ + STEPS_AND_SINKS,
                        "sources.events.rate (line 2, column 35): expected a non-negative integer but found 1.5"),
                Arguments.of("""
                        sources:
                          events: {type: generator, keys: 0}
                        """ + STEPS_AND_SINKS,
                        "sources.events.keys (line 2, column 35): expected an integer from 1 to 2147483647 but"
                                + " found 0"),
                Arguments.of("""
                        sources:
                          events: {type: generator, count: 99999999999999999999}
                        """ + STEPS_AND_SINKS,
                        "sources.events.count (line 2, column 36): expected a non-negative integer but found"
                                + " 99999999999999999999"),
                Arguments.of("""
                        sources:
                          topic: {type: kafka, bootstrap_servers: h:1, topic: t, bounded: "yes"}
                        """ + STEPS_AND_SINKS,
                        "sources.topic.bounded (line 2, column 67): expected true or false but found the string"
                                + " 'yes'"),
                Arguments.of("""
                        sources:
                          topic: {type: kafka, bootstrap_servers: h:1, topic: t, starting_offsets: newest}
                        """ + STEPS_AND_SINKS,
                        "sources.topic.starting_offsets (line 2, column 76): expected one of earliest, latest,"
                                + " committed but found the string 'newest'"),
                Arguments.of("""
                        sources:
                          topic:
                            type: kafka
                            bootstrap_servers: h:1
                            topic: t
                            properties: {bootstrap.servers: other:9092}
                        """ + STEPS_AND_SINKS,
                        "sources.topic.properties['bootstrap.servers'] (line 6, column 18): expected a consumer"
                                + " property other than bootstrap.servers, group.id but found 'bootstrap.servers',"
                                + " which must be set with bootstrap_servers"),
                // Kafka sinks.
                Arguments.of("""
                        sources: {events: {type: generator}}
                        steps: [{step_name: s, type: filter}]
                        sinks:
                          out: {type: kafka, bootstrap_servers: h:1, topic: t, delivery: exactly_once}
                        """,
                        "sinks.out.delivery (line 4, column 66): expected at_least_once, or checkpointing on for"
                                + " exactly_once (it commits at checkpoints: set bridge.checkpoint_interval_ms) but"
                                + " found the string 'exactly_once'"),
                Arguments.of("""
                        sources: {events: {type: generator}}
                        steps: [{step_name: s, type: filter}]
                        sinks:
                          out: {type: kafka, bootstrap_servers: h:1, topic: t, delivery: exactly-once}
                        """,
                        "sinks.out.delivery (line 4, column 66): expected one of at_least_once, exactly_once but"
                                + " found the string 'exactly-once'"),
                Arguments.of("""
                        sources: {events: {type: generator}}
                        steps: [{step_name: s, type: filter}]
                        sinks:
                          out: {type: kafka, bootstrap_servers: h:1, topic: t, transactional_id_prefix: out}
                        """,
                        "sinks.out.transactional_id_prefix (line 4, column 81): expected no transactional_id_prefix"
                                + " with at_least_once delivery (only exactly_once uses transactions) but found the"
                                + " string 'out'"),
                Arguments.of("""
                        sources: {events: {type: generator}}
                        steps: [{step_name: s, type: filter}]
                        sinks:
                          out:
                            type: kafka
                            bootstrap_servers: h:1
                            topic: t
                            properties: {transactional.id: fixed}
                        """,
                        "sinks.out.properties['transactional.id'] (line 8, column 18): expected a producer property"
                                + " other than bootstrap.servers, key.serializer, transactional.id, value.serializer"
                                + " but found 'transactional.id', which is made from transactional_id_prefix, the"
                                + " subtask and the checkpoint"),
                Arguments.of("""
                        sources: {events: {type: generator}}
                        steps: [{step_name: s, type: filter}]
                        sinks:
                          out: {type: kafka, bootstrap_servers: h:1, topic: t, key: {field: id}}
                        """,
                        "sinks.out.key.field (line 4, column 62): expected one of the keys json_field, header but"
                                + " found the key 'field'"),
                Arguments.of("""
                        sources: {events: {type: generator}}
                        steps: [{step_name: s, type: filter}]
                        sinks:
                          out: {type: kafka, bootstrap_servers: h:1}
                        """,
                        "sinks.out.topic (line 4, column 8): expected a topic name but found no 'topic' key"),
                Arguments.of("""
                        sources: {events: {type: generator}}
                        steps:
                          - step_name: s
                            type: filter
                            config: [field, value]
                        sinks: {out: {type: print}}
                        """,
                        "steps[0].config (line 5, column 13): expected a mapping (passed to the worker as JSON) but"
                                + " found a list"),
                Arguments.of("""
                        sources: {events: {type: generator}}
                        steps:
                          - step_name: s
                            type: filter
                            config: {threshold: .inf}
                        sinks: {out: {type: print}}
                        """,
                        "steps[0].config.threshold (line 5, column 25): expected a finite number (JSON has no"
                                + " infinity or NaN) but found .inf"),
                Arguments.of("""
                        sources: {events: {type: generator}}
                        steps:
                          - step_name: s
                            type: filter
                            config: {ratio: ._}
                        sinks: {out: {type: print}}
                        """,
                        "steps[0].config.ratio (line 5, column 21): expected a number but found ._"),
                Arguments.of("""
                        sources: {events: {type: generator}}
                        steps:
                          - step_name: s
                            type: filter
                            config: {loop: &loop [1, *loop]}
                        sinks: {out: {type: print}}
                        """,
                        "steps[0].config.loop[1] (line 5, column 20): expected a value that does not contain itself"
                                + " but found an alias to an enclosing node"),
                Arguments.of("""
                        sources: {events: {type: generator}}
                        steps: {step_name: s, type: filter}
                        sinks: {out: {type: print}}
                        """,
                        "steps (line 2, column 8): expected a list of steps but found a mapping"),
                Arguments.of(STEPS_AND_SINKS + """
                        sources: {events: {type: generator}}
                        bridge:
                          parallelism: 0
                        """,
                        "bridge.parallelism (line 5, column 16): expected an integer from 1 to 2147483647 but found"
                                + " 0"),
                Arguments.of(STEPS_AND_SINKS + """
                        sources: {events: {type: generator}}
                        bridge: {transport: tcp}
                        """,
                        "bridge.transport (line 4, column 21): expected one of shm, grpc but found the string 'tcp'"),
                Arguments.of(STEPS_AND_SINKS + """
                        sources: {events: {type: generator}}
                        bridge: {checkpoint_interval_ms: 5}
                        """,
                        "bridge.checkpoint_interval_ms (line 4, column 34): expected 0 (off) or an interval of at"
                                + " least 10 ms (Flink's minimum) but found 5"),
                Arguments.of(STEPS_AND_SINKS + """
                        sources: {events: {type: generator}}
                        bridge: {key: {json_field: key, header: tenant}}
                        """,
                        "bridge.key.header (line 4, column 33): expected only one of json_field, header but found both"
                                + " json_field and header"),
                Arguments.of(STEPS_AND_SINKS + """
                        sources: {events: {type: generator}}
                        bridge: {key: {}}
                        """,
                        "bridge.key (line 4, column 15): expected a mapping with one of json_field, header but found"
                                + " an empty mapping"),
                Arguments.of(STEPS_AND_SINKS + """
                        sources: {events: {type: generator}}
                        bridge: {key: key}
                        """,
                        "bridge.key (line 4, column 15): expected a mapping with one of json_field, header but found"
                                + " the string 'key'"),
                Arguments.of("""
                        - sources
                        - steps
                        """,
                        "document (line 1, column 1): expected a mapping with sources, steps and sinks but found a"
                                + " list"),
                // Unknown keys name the allowed ones.
                Arguments.of("""
                        sources:
                          events:
                            type: generator
                            cuont: 100
                        """ + STEPS_AND_SINKS,
                        "sources.events.cuont (line 4, column 5): expected one of the keys type, count, rate, keys,"
                                + " seed but found the key 'cuont'"),
                Arguments.of("""
                        sources: {events: {type: generator}}
                        steps: [{step_name: s, type: filter}]
                        sink: {out: {type: print}}
                        """,
                        "sink (line 3, column 1): expected one of the keys name, sources, steps, sinks, branches, segments,"
                                + " bridge, dead_letters but found the key 'sink'"),
                Arguments.of(STEPS_AND_SINKS + """
                        sources: {events: {type: generator}}
                        bridge:
                          paralelism: 2
                        """,
                        "bridge.paralelism (line 5, column 3): expected one of the keys transport, grpc_mode,"
                                + " worker_address, key, parallelism, max_in_flight, worker_timeout_ms,"
                                + " checkpoint_interval_ms, accept_at_least_once, worker, worker_recovery,"
                                + " worker_restart_timeout_ms but found the key 'paralelism'"),
                Arguments.of("""
                        sources: {events: {type: generator}}
                        steps: [{step_name: s, type: filter, settings: {}}]
                        sinks: {out: {type: print}}
                        """,
                        "steps[0].settings (line 2, column 38): expected one of the keys step_name, type, segment,"
                                + " config, on_error but found the key 'settings'"),
                Arguments.of("""
                        sources: {events: {type: generator}}
                        steps: [{step_name: s, type: filter}]
                        sinks: {out: {type: print, path: x}}
                        """,
                        "sinks.out.path (line 3, column 28): expected one of the keys type but found the key 'path'"),
                Arguments.of("""
                        sources:
                          events: {type: generator, count: 1}
                          events: {type: generator, count: 2}
                        """ + STEPS_AND_SINKS,
                        "sources.events (line 3, column 3): expected each key once but found a second 'events' (the"
                                + " first is on line 2)"),
                // Steps and segments.
                Arguments.of("""
                        sources: {events: {type: generator}}
                        steps:
                          - {step_name: batch, type: batch}
                          - {step_name: count, type: count}
                          - {step_name: batch, type: filter}
                        sinks: {out: {type: print}}
                        """,
                        "steps[2].step_name (line 5, column 17): expected a unique step name but found 'batch', which"
                                + " steps[0] already uses"),
                Arguments.of("""
                        sources: {events: {type: generator}}
                        steps:
                          - {step_name: a, type: filter, segment: first}
                          - {step_name: b, type: filter, segment: second}
                          - {step_name: c, type: filter, segment: first}
                        sinks: {out: {type: print}}
                        """,
                        "steps[2].segment (line 5, column 43): expected 'second' or a new segment name (a segment's"
                                + " steps must be consecutive) but found 'first', whose steps ended at steps[0]"),
                Arguments.of("""
                        sources: {events: {type: generator}}
                        steps:
                          - {step_name: a, type: filter}
                          - {step_name: b, type: filter, segment: other}
                          - {step_name: c, type: filter}
                        sinks: {out: {type: print}}
                        """,
                        "steps[2].segment (line 5, column 5): expected 'other' or a new segment name (a segment's"
                                + " steps must be consecutive) but found 'main' (the default), whose steps ended at"
                                + " steps[0]"),
                // Empty sections.
                Arguments.of("""
                        sources: {}
                        """ + STEPS_AND_SINKS,
                        "sources (line 1, column 10): expected at least one source but found an empty mapping"),
                Arguments.of("""
                        sources:
                        """ + STEPS_AND_SINKS,
                        "sources (line 1, column 9): expected a mapping of sources but found an empty value"),
                Arguments.of("""
                        sources: {events: {type: generator}}
                        steps: []
                        sinks: {out: {type: print}}
                        """,
                        "steps (line 2, column 8): expected at least one step but found an empty list"),
                Arguments.of("""
                        sources: {events: {type: generator}}
                        steps: [{step_name: s, type: filter}]
                        sinks: {}
                        """,
                        "sinks (line 3, column 8): expected at least one sink but found an empty mapping"),
                Arguments.of("""
                        sources: {events: {type: generator}}
                        steps:
                          - {step_name: s, type: append_field, on_error: ignore}
                        sinks: {out: {type: print}}
                        """,
                        "steps[0].on_error (line 3, column 50): expected one of fail, dead_letter but found the string"
                                + " 'ignore'"),
                Arguments.of("""
                        sources: {events: {type: generator}}
                        steps:
                          - {step_name: s, type: append_field, on_error: dead_letter}
                        sinks: {out: {type: print}}
                        """,
                        "steps[0].on_error (line 3, column 50): expected on_error: fail, or a dead_letters sink at the"
                                + " top level of the file (where the records this step fails on go) but found"
                                + " dead_letter"),
                Arguments.of("""
                        sources: {events: {type: generator}}
                        steps: [{step_name: s, type: append_field, on_error: dead_letter}]
                        sinks: {out: {type: print}}
                        dead_letters: {type: fil}
                        """,
                        "dead_letters.type (line 4, column 22): expected one of file, print, kafka but found the string"
                                + " 'fil'"),
                Arguments.of("""
                        # only a comment
                        """,
                        "document (line 1, column 1): expected a mapping with sources, steps and sinks but found an"
                                + " empty document"));
    }

    @ParameterizedTest
    @MethodSource("invalidPipelines")
    void invalidPipelinesNameThePlace(String yaml, String expectedAfterFileName) throws IOException {
        assertRefused(write("pipeline.yaml", yaml), expectedAfterFileName);
    }

    /** Each case: the file's text, then the start of the message after "<file>: ". */
    private static Stream<Arguments> yamlErrors() {
        return Stream.of(
                Arguments.of("sources:\n  events: {type: generator\n",
                        "YAML syntax (line 3, column 1): expected ',' or '}', but got <stream end> (while parsing a"
                                + " flow mapping at line 2, column 11)"),
                Arguments.of("sources:\n  events: type: generator\n",
                        "YAML syntax (line 2, column 15): mapping values are not allowed here"),
                Arguments.of("name: a\n---\nname: b\n",
                        "YAML syntax (line 2, column 1): but found another document (expected a single document in"
                                + " the stream at line 1, column 1)"),
                Arguments.of("sources: *missing\n",
                        "YAML syntax (line 1, column 10): found undefined alias missing"),
                Arguments.of("sources: !!python/object x\n",
                        "YAML syntax (line 1, column 10): Global tag is not allowed: tag:yaml.org,2002:python/object"));
    }

    @ParameterizedTest
    @MethodSource("yamlErrors")
    void yamlSyntaxErrorsAreOneLineWithoutSnakeyamlTraces(String yaml, String expectedAfterFileName)
            throws IOException {
        PipelineException e = assertRefused(write("broken.yaml", yaml), expectedAfterFileName);

        assertNull(e.getCause(), "a snakeyaml exception must not be attached");
    }

    @Test
    void missingFileIsReported() {
        Path file = dir.resolve("absent.yaml");

        assertRefused(file, "cannot read the pipeline file: no such file");
    }

    @Test
    void directoryIsReported() {
        assertRefused(dir, "cannot read the pipeline file: it is a directory");
    }

    @Test
    void fileThatIsNotUtf8IsReported() throws IOException {
        Path file = Files.write(dir.resolve("latin1.yaml"), "name: caf\u00e9\n".getBytes(StandardCharsets.ISO_8859_1));

        assertRefused(file, "cannot read the pipeline file: it is not UTF-8 text");
    }

    @Test
    void unreadableFileIsReported() throws IOException {
        Path file = write("secret.yaml", "name: x\n");
        assertTrue(file.toFile().setReadable(false, false));
        // Root reads files whatever their mode; the case can only be shown as another user.
        org.junit.jupiter.api.Assumptions.assumeFalse(Files.isReadable(file), "running as root");

        assertRefused(file, "cannot read the pipeline file: permission denied");
    }

    private Path write(String name, String yaml) throws IOException {
        return Files.writeString(dir.resolve(name), yaml);
    }

    /** A file of the repository; surefire sets flink-bridge.home, else look upwards from the working directory. */
    private static Path repositoryFile(String relative) {
        String home = System.getProperty("flink-bridge.home");
        if (home != null) {
            return Path.of(home, relative);
        }
        for (Path at = Path.of("").toAbsolutePath(); at != null; at = at.getParent()) {
            if (Files.exists(at.resolve(relative))) {
                return at.resolve(relative);
            }
        }
        throw new AssertionError(relative + " not found above " + Path.of("").toAbsolutePath());
    }
}
