package org.flinkbridge.conformance;

import java.io.PrintStream;

/** Runs contract points and prints one line each, then the summary line {@code conformance: N passed, M failed}. */
final class Report {

    /** A contract point's check: returns normally when the worker keeps it. */
    @FunctionalInterface
    interface Check {
        void run() throws Exception;
    }

    /** A contract point that does not hold, with what was seen. */
    static final class Broken extends Exception {
        Broken(String what) {
            super(what);
        }
    }

    private final PrintStream out;
    private int passed;
    private int failed;

    Report(PrintStream out) {
        this.out = out;
    }

    void check(String point, Check check) {
        try {
            check.run();
            passed++;
            out.println("PASS " + point);
        } catch (Exception | AssertionError e) {
            failed++;
            out.println("FAIL " + point + ": " + oneLine(e));
        }
        out.flush();
    }

    void skip(String point, String why) {
        out.println("SKIP " + point + ": " + why);
    }

    static void require(boolean holds, String otherwise) throws Broken {
        if (!holds) {
            throw new Broken(otherwise);
        }
    }

    private static String oneLine(Throwable e) {
        String message = e instanceof Broken || e.getMessage() != null && e instanceof java.io.IOException
                ? e.getMessage() : e.toString();
        return String.valueOf(message).strip().replaceAll("\\s*\\R\\s*", " | ");
    }

    int failed() {
        return failed;
    }

    String summary() {
        return "conformance: " + passed + " passed, " + failed + " failed";
    }
}
