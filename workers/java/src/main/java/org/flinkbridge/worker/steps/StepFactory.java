package org.flinkbridge.worker.steps;

import org.flinkbridge.protocol.BuiltInStep;
import org.flinkbridge.worker.sdk.Step;
import org.flinkbridge.worker.sdk.StepContext;

import java.lang.reflect.InvocationTargetException;
import java.util.Optional;

/** Makes a step's logic from its type: a built-in step's name, or the class name of a user step. */
public final class StepFactory {

    private StepFactory() {}

    /** Creates the step, built for a session that is not keyed, and opens it with its context. */
    public static Step create(String type, StepContext context) {
        return create(type, context, false);
    }

    /**
     * Creates the step and opens it with its context.
     *
     * @param keyedSession the session's records carry their keys: a built-in step that keeps per-key state keeps it
     *                     in cells then ({@code running_count}; {@code batch} and {@code count}, with timers;
     *                     docs/steps.md); a user step learns nothing of it
     */
    public static Step create(String type, StepContext context, boolean keyedSession) {
        Step step = instantiate(type, context.stepName(), keyedSession);
        try {
            step.open(context);
        } catch (IllegalArgumentException e) {
            throw e;
        } catch (Exception e) {
            throw new IllegalArgumentException("step '" + context.stepName() + "' (" + type + ") failed to open: "
                    + e, e);
        }
        return step;
    }

    private static Step instantiate(String type, String stepName, boolean keyedSession) {
        Optional<BuiltInStep> builtIn = BuiltInStep.find(type);
        if (builtIn.isPresent()) {
            return switch (builtIn.get()) {
                case APPEND_FIELD -> new AppendFieldStep();
                case BATCH -> new BatchStep(keyedSession);
                case FILTER -> new FilterStep();
                case COUNT -> new CountStep(keyedSession);
                case RUNNING_COUNT -> new RunningCountStep(keyedSession);
                case WINDOW -> new WindowStep();
            };
        }
        if (type.isEmpty()) {
            throw new IllegalArgumentException("step '" + stepName + "' has no type, so the worker would serve it"
                    + " with a segment of its own by the segment's id (a sentry_streams pipeline); the Java worker"
                    + " has none: give the step a type, or run the Python worker with --segments module.NAME");
        }
        if (!type.contains(".")) {
            throw new IllegalArgumentException("step '" + stepName + "' has unknown type '" + type
                    + "': built-in types are " + String.join(", ", BuiltInStep.typeNames())
                    + "; a user step is named by its fully qualified class name (with dots)");
        }
        return userInstance(stepName, "class", type, Step.class);
    }

    /**
     * A new instance of the user class {@code className}, found as a user step is: by its fully qualified name on
     * the worker's class path (not initialised until it is known to implement {@code kind}), made with its public
     * no-argument constructor; an IllegalArgumentException naming the step and the class when it cannot be.
     *
     * @param what how the errors name the class: {@code class} for a step, {@code aggregate class} for a window's
     */
    static <T> T userInstance(String stepName, String what, String className, Class<T> kind) {
        Class<?> found;
        try {
            // Not initialised yet: a class that is no step must not run its static code in the worker.
            found = Class.forName(className, false, Thread.currentThread().getContextClassLoader());
        } catch (ClassNotFoundException e) {
            throw new IllegalArgumentException("step '" + stepName + "': " + what + " " + className
                    + " is not on the worker's classpath", e);
        }
        if (!kind.isAssignableFrom(found)) {
            throw new IllegalArgumentException("step '" + stepName + "': " + what + " " + className
                    + " does not implement " + kind.getName());
        }
        try {
            return kind.cast(found.getConstructor().newInstance());
        } catch (NoSuchMethodException | IllegalAccessException e) {
            throw new IllegalArgumentException("step '" + stepName + "': " + what + " " + className
                    + " needs a public no-argument constructor", e);
        } catch (InstantiationException | InvocationTargetException e) {
            throw new IllegalArgumentException("step '" + stepName + "': creating " + className + " failed: "
                    + (e.getCause() == null ? e : e.getCause()), e);
        }
    }
}
