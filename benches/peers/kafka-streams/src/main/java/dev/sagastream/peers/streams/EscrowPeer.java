package dev.sagastream.peers.streams;

import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.state.Stores;

/**
 * The escrow saga on Kafka Streams, exactly-once (v2), state in an
 * in-memory store with its changelog (and record caching, as a tuned
 * Kafka Streams application has it), timers in a second store fired by a
 * wall-clock punctuator. Reads the topics sagastream's escrow saga reads
 * and writes the ones it writes, under the given prefix.
 *
 * <pre>
 *   java -jar escrow-peer.jar BOOTSTRAP PREFIX APPLICATION_ID FEE_BPS
 * </pre>
 *
 * Prints {@code state RUNNING} (and every other state change) on stdout;
 * stops cleanly on SIGTERM.
 */
public final class EscrowPeer {
    record Config(long feeBps, Duration holdTimeout, Duration autoConfirmAfter, Duration stuckAfter, Duration purgeAfter) {}

    public static void main(String[] args) throws InterruptedException {
        if (args.length != 4) {
            System.err.println("usage: java -jar escrow-peer.jar BOOTSTRAP PREFIX APPLICATION_ID FEE_BPS");
            System.exit(2);
        }
        String bootstrap = args[0];
        String prefix = args[1];
        String applicationId = args[2];
        // sagastream's defaults (docs/escrow-saga.md).
        Config config = new Config(Long.parseLong(args[3]), Duration.ofMinutes(15), Duration.ofHours(24),
                Duration.ofMinutes(10), Duration.ofDays(7));

        Topology topology = new Topology();
        topology.addSource("inputs", Serdes.String().deserializer(), Serdes.ByteArray().deserializer(),
                prefix + "booking.events", prefix + "payment.events");
        topology.addProcessor("escrow-saga", () -> new EscrowProcessor(config), "inputs");
        topology.addStateStore(Stores.keyValueStoreBuilder(
                        Stores.inMemoryKeyValueStore(EscrowProcessor.SAGAS), Serdes.String(), Saga.serde())
                .withCachingEnabled(), "escrow-saga");
        topology.addStateStore(Stores.keyValueStoreBuilder(
                        Stores.inMemoryKeyValueStore(EscrowProcessor.TIMERS), Serdes.String(), Serdes.String())
                .withCachingEnabled(), "escrow-saga");
        for (String topic : new String[] {"payment.commands", "booking.commands", "escrow.saga.events", "booking.events"}) {
            topology.addSink(topic, prefix + topic, Serdes.String().serializer(), Serdes.ByteArray().serializer(),
                    "escrow-saga");
        }
        topology.addSink("dlq", prefix + "escrow.saga.dlq", Serdes.String().serializer(),
                Serdes.ByteArray().serializer(), "escrow-saga");

        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, applicationId);
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        // sagastream's commit cadence (and Kafka Streams' own default under exactly-once).
        props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, Integer.getInteger("peer.threads", 1));
        props.put(StreamsConfig.STATE_DIR_CONFIG, System.getProperty("peer.state.dir", "/tmp/kafka-streams-peer"));
        props.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, Integer.getInteger("peer.replication", -1));
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");

        KafkaStreams streams = new KafkaStreams(topology, props);
        CountDownLatch stopped = new CountDownLatch(1);
        streams.setStateListener((now, before) -> {
            System.out.println("state " + now);
            System.out.flush();
            if (now == KafkaStreams.State.NOT_RUNNING || now == KafkaStreams.State.ERROR) {
                stopped.countDown();
            }
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            streams.close(Duration.ofSeconds(30));
            stopped.countDown();
        }));
        streams.setUncaughtExceptionHandler(e -> {
            System.err.println("escrow-peer: stream thread failed:");
            e.printStackTrace();
            return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.start();
        stopped.await();
        if (streams.state() == KafkaStreams.State.ERROR) {
            System.exit(1);
        }
    }
}
