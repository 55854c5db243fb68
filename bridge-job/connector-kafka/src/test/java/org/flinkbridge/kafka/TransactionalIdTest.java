package org.flinkbridge.kafka;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Which lingering transactions each writer aborts, and how the sink's transactions are checkpointed. */
class TransactionalIdTest {

    private static final String PREFIX = "flink-bridge-p-out";

    @Test
    void idsParseBackOnlyUnderTheirOwnPrefix() {
        TransactionalId id = new TransactionalId(PREFIX, 3, 42);

        assertEquals("flink-bridge-p-out-3-42", id.toString());
        assertEquals(Optional.of(id), TransactionalId.parse(PREFIX, id.toString()));
        // Another sink whose prefix extends this one, and ids that are not the sink's.
        assertEquals(Optional.empty(), TransactionalId.parse(PREFIX, "flink-bridge-p-out-2-3-42"));
        assertEquals(Optional.empty(), TransactionalId.parse(PREFIX, "flink-bridge-p-out-x-42"));
        assertEquals(Optional.empty(), TransactionalId.parse("p.out", "p-out-3-42"));
    }

    @Test
    void writersAbortOnlyTransactionsAfterTheRestoredCheckpointOfTheirShareOfSubtasks() {
        // Restored from checkpoint 5 at parallelism 2, after running at parallelism 3.
        assertFalse(new TransactionalId(PREFIX, 0, 5).abortedOnStartBy(0, 2, 5), "the committer commits it");
        assertTrue(new TransactionalId(PREFIX, 0, 6).abortedOnStartBy(0, 2, 5));
        assertFalse(new TransactionalId(PREFIX, 1, 6).abortedOnStartBy(0, 2, 5), "writer 1's");
        assertTrue(new TransactionalId(PREFIX, 2, 7).abortedOnStartBy(0, 2, 5), "subtask 2 is gone: 2 % 2 = 0");
        assertFalse(new TransactionalId(PREFIX, 2, 7).abortedOnStartBy(1, 2, 5));
        // A fresh start (0) aborts every transaction of the share.
        assertTrue(new TransactionalId(PREFIX, 1, 1).abortedOnStartBy(1, 2, 0));
    }

    @Test
    void transactionsAndWriterStateSurviveTheirSerializers() throws IOException {
        KafkaTransactionSerializer transactions = new KafkaTransactionSerializer();
        KafkaTransaction transaction = new KafkaTransaction(new TransactionalId(PREFIX, 1, 9), 1234L, (short) 7);
        TransactionalIdPrefixSerializer prefixes = new TransactionalIdPrefixSerializer();

        assertEquals(transaction, transactions.deserialize(transactions.getVersion(),
                transactions.serialize(transaction)));
        assertEquals("préfixe", prefixes.deserialize(prefixes.getVersion(), prefixes.serialize("préfixe")));
        IOException newer = assertThrows(IOException.class, () -> transactions.deserialize(2, new byte[0]));
        assertEquals("cannot read a kafka sink transaction of version 2; this job reads 1", newer.getMessage());
    }
}
