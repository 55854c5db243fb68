package org.flinkbridge.job;

import org.apache.flink.datastream.api.ExecutionEnvironment;
import org.flinkbridge.pipeline.Pipeline;

/**
 * The job's entry point for {@code flink run}: {@code flink run bridge-job.jar --pipeline FILE
 * [--transport=...]}. The pipeline file is read on the client; errors in it end the submission before
 * anything is deployed.
 */
public final class BridgeJob {

    private BridgeJob() {}

    public static void main(String[] args) throws Exception {
        JobArguments arguments = JobArguments.parse(args, null);
        Pipeline pipeline = arguments.loadPipeline();
        ExecutionEnvironment env = ExecutionEnvironment.getInstance();
        PipelineJob.build(env, pipeline, arguments);
        env.execute(pipeline.name());
    }
}
