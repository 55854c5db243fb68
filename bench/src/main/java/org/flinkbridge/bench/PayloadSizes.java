package org.flinkbridge.bench;

import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.State;

/** The payload sizes every benchmark here runs with, declared once so the report can line them up. */
@State(Scope.Benchmark)
public abstract class PayloadSizes {

    @Param({"100", "1024", "16384"})
    public int payloadBytes;
}
