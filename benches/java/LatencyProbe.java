// End-to-end latency of the Java client, for `cargo bench --bench latency`: the same run as the
// bench's kbus and librdkafka runs, in a JVM of its own. Launched as a single-file program
// (`java -cp <Kafka's libs> LatencyProbe.java ...`), so it needs no build step.
//
// Arguments: bootstrap topic rate seconds warm-up-seconds partitions value-size [key=value ...]
// (the client settings, Java names, given to both producer and consumer).
//
// One producer sends `rate` records per second, a slice every half millisecond, for warm-up +
// seconds; each value starts with the nanoseconds since the run's epoch at which it was handed to
// `send`. One consumer (manual assignment of every partition from the beginning) notes when it
// saw each record. Printed: `seen N`, then `latency NANOS` for every record sent after the
// warm-up, then `peak_rss_kib N` (the JVM's peak resident set). A failure prints `error ...` and
// exits with 1.

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class LatencyProbe {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = args[1];
        long rate = Long.parseLong(args[2]);
        long seconds = Long.parseLong(args[3]);
        long warmUp = Long.parseLong(args[4]);
        int partitions = Integer.parseInt(args[5]);
        int valueSize = Integer.parseInt(args[6]);
        Properties settings = new Properties();
        settings.put("bootstrap.servers", bootstrap);
        for (int i = 7; i < args.length; i++) {
            int eq = args[i].indexOf('=');
            settings.put(args[i].substring(0, eq), args[i].substring(eq + 1));
        }
        long total = rate * (warmUp + seconds);
        long warmUpNanos = warmUp * 1_000_000_000L;

        Properties producerProps = new Properties();
        Properties consumerProps = new Properties();
        for (String k : settings.stringPropertyNames()) {
            String v = settings.getProperty(k);
            if (k.startsWith("fetch.")) {
                consumerProps.put(k, v);
            } else {
                producerProps.put(k, v);
            }
        }
        consumerProps.put("bootstrap.servers", bootstrap);
        consumerProps.put("enable.auto.commit", "false");
        KafkaProducer<String, byte[]> producer =
                new KafkaProducer<>(producerProps, new StringSerializer(), new ByteArraySerializer());
        KafkaConsumer<byte[], byte[]> consumer =
                new KafkaConsumer<>(consumerProps, new ByteArrayDeserializer(), new ByteArrayDeserializer());
        producer.partitionsFor(topic);
        List<TopicPartition> assignment = new ArrayList<>();
        for (int p = 0; p < partitions; p++) {
            assignment.add(new TopicPartition(topic, p));
        }
        consumer.assign(assignment);
        consumer.seekToBeginning(assignment);

        long epoch = System.nanoTime();
        long[] samples = new long[(int) total];
        int[] count = new int[1];
        long[] seen = new long[1];
        AtomicReference<String> failure = new AtomicReference<>();
        Thread reader = new Thread(() -> {
            long idleSince = System.nanoTime();
            try {
                while (seen[0] < total) {
                    ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(100));
                    long now = System.nanoTime() - epoch;
                    if (records.isEmpty()) {
                        if (System.nanoTime() - idleSince > 30_000_000_000L) {
                            failure.set("nothing for 30 s after " + seen[0]);
                            return;
                        }
                        continue;
                    }
                    idleSince = System.nanoTime();
                    for (ConsumerRecord<byte[], byte[]> r : records) {
                        seen[0]++;
                        byte[] v = r.value();
                        if (v == null || v.length < 8) {
                            continue;
                        }
                        long sent = ByteBuffer.wrap(v, 0, 8).getLong();
                        if (sent >= warmUpNanos && count[0] < samples.length) {
                            samples[count[0]++] = Math.max(0, now - sent);
                        }
                    }
                }
            } catch (RuntimeException e) {
                failure.set("poll: " + e);
            }
        });
        reader.start();

        long sent = 0;
        long start = System.nanoTime();
        while (sent < total) {
            long due = Math.min(total, (long) ((System.nanoTime() - start) / 1e9 * rate));
            while (sent < due) {
                byte[] value = new byte[valueSize];
                java.util.Arrays.fill(value, (byte) 'x');
                ByteBuffer.wrap(value).putLong(System.nanoTime() - epoch);
                producer.send(new ProducerRecord<>(topic, Long.toString(sent), value), (md, e) -> {
                    if (e != null) {
                        failure.compareAndSet(null, "send: " + e);
                    }
                });
                sent++;
            }
            LockSupport.parkNanos(500_000);
        }
        producer.flush();
        reader.join();
        producer.close();
        consumer.close();
        if (failure.get() != null) {
            System.out.println("error " + failure.get());
            System.exit(1);
        }
        long peak = peakRssKib(); // before the output is put together
        StringBuilder out = new StringBuilder();
        out.append("seen ").append(seen[0]).append('\n');
        for (int i = 0; i < count[0]; i++) {
            out.append("latency ").append(samples[i]).append('\n');
        }
        out.append("peak_rss_kib ").append(peak).append('\n');
        System.out.print(out);
    }

    // This process's peak resident set (VmHWM), in KiB; 0 when /proc says nothing.
    static long peakRssKib() throws java.io.IOException {
        for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/self/status"))) {
            if (line.startsWith("VmHWM:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        }
        return 0;
    }
}
