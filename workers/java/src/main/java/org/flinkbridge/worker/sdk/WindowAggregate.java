package org.flinkbridge.worker.sdk;

/**
 * A user aggregate of the built-in {@code window} step (docs/steps.md): its {@code aggregate} config names the class
 * by its fully qualified name, loaded as a user step is (on the worker's class path, a public no-argument
 * constructor). Flink's {@code AggregateFunction}, with the accumulator as bytes: the window step keeps the
 * accumulators in its cells, so they are the same bytes in every worker (the Python and Rust workers host a Python
 * class with the same three methods) and in every checkpoint. An instance keeps nothing a checkpoint needs: all of a
 * window's state is its accumulators.
 *
 * <p>The step keeps one accumulator per key and <em>pane</em>, the slice of time of gcd({@code size_ms},
 * {@code slide_ms}) that a record falls in, so each record is added once however many sliding windows hold it. A
 * window's value when it fires is {@link #merge} of the accumulators of its panes, in time order (a window with one
 * pane takes that accumulator as it is: tumbling windows never merge), then {@link #result}.
 *
 * <p>An exception fails the record ({@link #add}) or the firing ({@link #merge}, {@link #result}), naming the step
 * and the class; so does a null accumulator, or a result that Jackson cannot write as JSON.
 */
public interface WindowAggregate {

    /**
     * Adds a record to an accumulator and returns the new accumulator (which may be {@code accumulator} changed in
     * place).
     *
     * @param accumulator the pane's accumulator, or null when the record is the pane's first
     * @param record      the record as it came to the step
     */
    byte[] add(byte[] accumulator, Record record) throws Exception;

    /** The accumulator of two panes' records, {@code a}'s before {@code b}'s. */
    byte[] merge(byte[] a, byte[] b) throws Exception;

    /**
     * A window's result, from its accumulator: the {@code result} field of its output
     * {@code {"key": K, "window_start": S, "window_end": E, "result": V}}, as Jackson writes it (a number, a string, a
     * boolean, null, a {@code Map}, a {@code List}, a Jackson tree or a bean).
     */
    Object result(byte[] accumulator) throws Exception;
}
