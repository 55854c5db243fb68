package org.flinkbridge.chaos;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The failures of a TaskManager kill as the sandbox's exception history listed them (newest first). */
class FailoversTest {

    private static final Cluster.Failure CONNECTION_CLOSED = failure(143_000, "RemoteTransportException: Connection "
            + "unexpectedly closed by remote task manager '127.0.0.1/127.0.0.1:34783 [ 127.0.0.1:37099-3fe647 ] '. "
            + "This might indicate that the remote task manager was lost.");
    private static final Cluster.Failure NO_LONGER_REACHABLE = failure(145_000, "ResourceManagerException: "
            + "TaskManager with id 127.0.0.1:37099-3fe647 is no longer reachable.");
    private static final Cluster.Failure SUBMIT_UNREACHABLE = failure(146_000, "RecipientUnreachableException: Could "
            + "not send message [RemoteRpcInvocation(TaskExecutorGateway.submitTask(TaskDeploymentDescriptor, "
            + "JobMasterId, Duration))] to recipient [Actor[pekko.tcp://flink@127.0.0.1:37099/user/rpc/taskmanager_0]],"
            + " because the recipient is unreachable.");
    private static final Cluster.Failure NO_SLOT = failure(147_000, "CompletionException: NoResourceAvailableException:"
            + " Could not acquire the minimum required resources.");

    private static Cluster.Failure failure(long at, String message) {
        return new Cluster.Failure(at, message.substring(0, message.indexOf(':')), message);
    }

    @Test
    void aKilledTaskManagerBeginsOneFailoverHoweverOftenItIsSeen() {
        List<Cluster.Failure> newestFirst = List.of(NO_SLOT, SUBMIT_UNREACHABLE, NO_LONGER_REACHABLE, CONNECTION_CLOSED);
        assertEquals(Set.of(NO_SLOT, SUBMIT_UNREACHABLE, NO_LONGER_REACHABLE), Failovers.retries(newestFirst));
    }

    @Test
    void anotherTaskManagersLossOrAWorkersFailureIsAFailoverOfItsOwn() {
        Cluster.Failure otherTaskManager = failure(300_000, "ResourceManagerException: TaskManager with id "
                + "127.0.0.1:40111-a1b2c3 is no longer reachable.");
        Cluster.Failure workerFailed = failure(400_000, "WorkerFailure: the worker of session s-1 exited with code 1");
        assertEquals(Set.of(), Failovers.retries(List.of(workerFailed, otherTaskManager, CONNECTION_CLOSED)));
    }
}
