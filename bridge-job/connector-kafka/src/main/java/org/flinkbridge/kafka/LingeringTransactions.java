package org.flinkbridge.kafka;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ListTransactionsOptions;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.flinkbridge.pipeline.KafkaSinkSpec;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.ExecutionException;

/**
 * Aborts the open transactions an earlier run or attempt of a sink left behind that no checkpoint will commit
 * (see {@link TransactionalId#abortedOnStartBy}). Until they end, readers of committed data cannot read past
 * them. They are found by listing the broker's open transactions and matching their ids.
 */
final class LingeringTransactions {

    private static final Logger LOG = LoggerFactory.getLogger(LingeringTransactions.class);

    private LingeringTransactions() {}

    /** @param prefixes the sink's transactional id prefix and those of the restored state */
    static void abort(KafkaSinkSpec spec, Collection<String> prefixes, int subtask, int parallelism,
                      long restoredCheckpointId) throws IOException {
        for (String transactionalId : openTransactions(spec)) {
            boolean ours = prefixes.stream().anyMatch(prefix -> TransactionalId.parse(prefix, transactionalId)
                    .filter(id -> id.abortedOnStartBy(subtask, parallelism, restoredCheckpointId))
                    .isPresent());
            if (ours) {
                LOG.info("kafka sink '{}' aborts the lingering transaction {}", spec.name(), transactionalId);
                try (KafkaProducer<byte[], byte[]> producer =
                             KafkaClients.transactionalProducer(spec, transactionalId)) {
                    // Fences the producer that began the transaction and aborts it.
                    producer.initTransactions();
                }
            }
        }
    }

    private static List<String> openTransactions(KafkaSinkSpec spec) throws IOException {
        try (Admin admin = KafkaClients.admin(spec)) {
            return admin.listTransactions(new ListTransactionsOptions().filterStates(List.of(TransactionState.ONGOING)))
                    .all().get().stream().map(TransactionListing::transactionalId).toList();
        } catch (ExecutionException e) {
            throw new IOException("kafka sink '" + spec.name() + "' cannot list the open transactions at "
                    + spec.bootstrapServers() + ": " + e.getCause(), e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while listing the open transactions of kafka sink '"
                    + spec.name() + "'");
        }
    }
}
