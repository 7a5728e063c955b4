#!/usr/bin/env python3
"""Capture real Kafka frames between real peers, for the protocol crate's golden-vector tests.

Not run by CI: the frames it writes are committed under protocol/tests/golden/. Run it again when the
set of APIs or versions grows:

    scripts/golden/capture.sh          # sets up a Python venv with the peers, then runs this file

Peers (none of them is kbus):
  - tansu 0.6.0 (a Kafka-compatible broker) answering aiokafka and librdkafka (confluent-kafka);
  - librdkafka's mock cluster (test.mock.num.brokers=3) answering librdkafka.

All traffic is captured on loopback with dumpcap, reassembled per TCP connection and cut into frames;
each frame is written as `NNNN-<api>-v<version>-<request|response>.bin` (the frame body without its
4-byte size prefix) under OUT/<scenario>/.
"""

import asyncio
import collections
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

API_NAMES = {
    0: "produce", 1: "fetch", 2: "list_offsets", 3: "metadata", 8: "offset_commit", 9: "offset_fetch",
    10: "find_coordinator", 11: "join_group", 12: "heartbeat", 13: "leave_group", 14: "sync_group",
    15: "describe_groups", 16: "list_groups", 17: "sasl_handshake", 18: "api_versions",
    19: "create_topics", 20: "delete_topics", 22: "init_producer_id", 32: "describe_configs",
    36: "sasl_authenticate",
}
# Keep at most this many frames per (api, version, direction) and scenario, and none larger than this.
PER_KIND = 2
MAX_FRAME = 256 * 1024


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port}")


class Tansu:
    def __init__(self, binary, workdir, port, authentication=False):
        self.port = port
        url = f"tcp://127.0.0.1:{port}"
        args = [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                "--storage-engine", "sqlite://tansu.db", "--silent"]
        if authentication:
            args.append("--authentication")
        self.proc = subprocess.Popen(args, cwd=workdir, env={"PATH": os.environ["PATH"]},
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(port)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ---------------------------------------------------------------- scenarios


async def step(name, coro, timeout=20):
    """Runs one peer operation; a peer's failure or hang is reported, not fatal: keep capturing."""
    try:
        result = await asyncio.wait_for(coro, timeout)
        print(f"  {name}: ok", flush=True)
        return result
    except Exception as e:  # noqa: BLE001
        print(f"  {name}: {type(e).__name__}: {e}", flush=True)
        return None


async def aiokafka_session(bootstrap, topic, sasl=None):
    """Admin, producers (plain, idempotent, each codec), a group consumer, offsets: through aiokafka."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    print(f"aiokafka against {bootstrap} (sasl: {sasl and sasl[0]})", flush=True)
    extra = {}
    if sasl:
        extra = dict(security_protocol="SASL_PLAINTEXT", sasl_mechanism=sasl[0],
                     sasl_plain_username=sasl[1], sasl_plain_password=sasl[2])
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **extra)
    await step("admin start", admin.start())
    await step("create_topics", admin.create_topics([NewTopic(topic, 3, 1)]))
    await step("describe_configs", admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)]))
    for codec in [None, "gzip", "lz4", "zstd"]:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, compression_type=codec,
                                    linger_ms=5, **extra)
        await step(f"producer {codec} start", producer.start())

        async def send_all():
            futs = []
            for i in range(50):
                futs.append(await producer.send(topic, key=f"key-{i}".encode(),
                                                value=f"value-{i}-{codec}".encode() * 3,
                                                headers=[("h", b"v"), ("n", str(i).encode())]))
            await asyncio.gather(*futs)

        await step(f"produce {codec}", send_all())
        await step(f"producer {codec} stop", producer.stop())
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id="golden-group",
                                auto_offset_reset="earliest", enable_auto_commit=False, **extra)
    await step("consumer start", consumer.start())

    async def consume():
        got = 0
        deadline = time.time() + 15
        while got < 200 and time.time() < deadline:
            batch = await consumer.getmany(timeout_ms=1000)
            got += sum(len(v) for v in batch.values())
        return got

    print("  consumed:", await step("consume", consume(), 25), flush=True)
    await step("commit", consumer.commit())
    await step("end_offsets", consumer.end_offsets([TopicPartition(topic, 0)]))
    await step("beginning_offsets", consumer.beginning_offsets([TopicPartition(topic, 0)]))
    await step("consumer stop", consumer.stop())
    await step("list_consumer_groups", admin.list_consumer_groups())
    await step("describe_consumer_groups", admin.describe_consumer_groups(["golden-group"]))
    await step("list_consumer_group_offsets", admin.list_consumer_group_offsets("golden-group"))
    await step("delete_topics", admin.delete_topics([topic]))
    await step("admin close", admin.close())


def librdkafka_session(bootstrap, topic, codecs, admin=True, idempotent=True):
    """The same through librdkafka (confluent-kafka)."""
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic, ConfigResource

    if admin:
        a = AdminClient({"bootstrap.servers": bootstrap})
        for f in a.create_topics([NewTopic(topic, 3, 1)]).values():
            try:
                f.result(15)
            except Exception as e:
                print("create_topics:", e)
        try:
            for f in a.describe_configs([ConfigResource("topic", topic)]).values():
                f.result(15)
        except Exception as e:
            print("describe_configs:", e)
    for codec in codecs:
        p = Producer({"bootstrap.servers": bootstrap, "compression.type": codec, "linger.ms": 5,
                      "enable.idempotence": idempotent and codec == "gzip", "acks": "all"})
        for i in range(50):
            p.produce(topic, key=f"key-{i}", value=f"value-{i}-{codec}" * 3, headers=[("h", b"v")])
        left = p.flush(30)
        print(f"librdkafka {codec}: {left} left unsent")
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "golden-rd", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe([topic])
    got = 0
    deadline = time.time() + 30
    while got < 50 * len(codecs) and time.time() < deadline:
        m = c.poll(1.0)
        if m is not None and m.error() is None:
            got += 1
    try:
        c.commit(asynchronous=False)
        c.committed([TopicPartition(topic, 0)], timeout=10)
        c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        c.offsets_for_times([TopicPartition(topic, 0, 0)], timeout=10)
    except Exception as e:
        print("offsets:", e)
    c.close()
    print(f"librdkafka consumed {got}")
    if admin:
        try:
            a.list_consumer_groups().result(15)
            for f in a.describe_consumer_groups(["golden-rd"]).values():
                f.result(15)
        except Exception as e:
            print("groups:", e)
        for f in a.delete_topics([topic]).values():
            try:
                f.result(15)
            except Exception as e:
                print("delete_topics:", e)


def mock_cluster_bootstrap():
    """Starts librdkafka's mock cluster inside a producer and returns (producer, bootstrap)."""
    from confluent_kafka import Producer

    holder = Producer({"test.mock.num.brokers": 3})
    md = holder.list_topics(timeout=10)
    bootstrap = ",".join(f"{b.host}:{b.port}" for b in md.brokers.values())
    return holder, bootstrap


# ---------------------------------------------------------------- capture and split


def split_frames(pcap, broker_ports):
    """Returns {scenario-free list of (api, version, direction, bytes)} in capture order."""
    out = subprocess.run(
        ["tshark", "-r", pcap, "-Y", "tcp.len > 0", "-T", "fields", "-e", "tcp.stream",
         "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "tcp.payload"],
        check=True, capture_output=True, text=True).stdout
    streams = collections.OrderedDict()  # (stream, to_broker) -> bytearray
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) != 4 or not parts[3]:
            continue
        stream, sport, dport, payload = parts[0], int(parts[1]), int(parts[2]), parts[3]
        if dport in broker_ports:
            key = (stream, True)
        elif sport in broker_ports:
            key = (stream, False)
        else:
            continue
        streams.setdefault(key, bytearray()).extend(bytes.fromhex(payload.replace(":", "")))
    frames = []
    for (stream, to_broker), data in streams.items():
        if not to_broker:
            continue
        pending = {}
        pos = 0
        while pos + 4 <= len(data):
            size = int.from_bytes(data[pos:pos + 4], "big", signed=True)
            body = bytes(data[pos + 4:pos + 4 + size])
            if len(body) < size or size < 8:
                break
            pos += 4 + size
            api = int.from_bytes(body[0:2], "big", signed=True)
            ver = int.from_bytes(body[2:4], "big", signed=True)
            corr = int.from_bytes(body[4:8], "big", signed=True)
            pending[corr] = (api, ver)
            frames.append((api, ver, "request", body))
        resp = streams.get((stream, False), b"")
        pos = 0
        while pos + 4 <= len(resp):
            size = int.from_bytes(resp[pos:pos + 4], "big", signed=True)
            body = bytes(resp[pos + 4:pos + 4 + size])
            if len(body) < size or size < 4:
                break
            pos += 4 + size
            corr = int.from_bytes(body[0:4], "big", signed=True)
            if corr in pending:
                api, ver = pending[corr]
                frames.append((api, ver, "response", body))
    return frames


def write_frames(frames, outdir):
    os.makedirs(outdir, exist_ok=True)
    seen = collections.Counter()
    n = 0
    for api, ver, direction, body in frames:
        name = API_NAMES.get(api)
        if name is None or len(body) > MAX_FRAME:
            continue
        kind = (api, ver, direction)
        if seen[kind] >= PER_KIND:
            continue
        seen[kind] += 1
        n += 1
        with open(os.path.join(outdir, f"{n:04}-{name}-v{ver}-{direction}.bin"), "wb") as f:
            f.write(body)
    print(f"{outdir}: {n} frames")


def capture(pcap, run):
    cap = subprocess.Popen(["dumpcap", "-q", "-i", "lo", "-f", "tcp", "-w", pcap],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2)
    try:
        ports = run()
    finally:
        time.sleep(1)
        cap.send_signal(signal.SIGINT)
        cap.wait(10)
    return ports


def main():
    out = os.path.abspath(sys.argv[1])
    tansu = shutil.which("tansu") or sys.exit("tansu is not on PATH")
    work = tempfile.mkdtemp(prefix="kbus-golden-")

    # 1. tansu answering aiokafka and librdkafka.
    def tansu_plain():
        d = os.path.join(work, "plain")
        os.makedirs(d)
        port = free_port()
        broker = Tansu(tansu, d, port)
        try:
            asyncio.run(aiokafka_session(f"127.0.0.1:{port}", "golden-aiokafka"))
            # tansu 0.6.0 drops the connection on InitProducerId, so no idempotent producer here.
            librdkafka_session(f"127.0.0.1:{port}", "golden-librdkafka", ["none", "gzip", "lz4", "zstd"],
                               idempotent=False)
        finally:
            broker.stop()
        return {port}

    pcap = os.path.join(work, "tansu.pcap")
    ports = capture(pcap, tansu_plain)
    write_frames(split_frames(pcap, ports), os.path.join(out, "tansu"))

    # 2. tansu with SCRAM authentication answering aiokafka.
    def tansu_scram():
        d = os.path.join(work, "scram")
        os.makedirs(d)
        port = free_port()
        broker = Tansu(tansu, d, port)
        for mech in ["scram256", "scram512"]:
            subprocess.run([tansu, "user", "create", f"user-{mech}", "secret-password", "--mechanism", mech,
                            "--broker", f"tcp://127.0.0.1:{port}"], check=True, cwd=d)
        broker.stop()
        broker = Tansu(tansu, d, port, authentication=True)
        try:
            for mech, name in [("SCRAM-SHA-256", "scram256"), ("SCRAM-SHA-512", "scram512")]:
                asyncio.run(aiokafka_session(f"127.0.0.1:{port}", f"golden-{name}",
                                             sasl=(mech, f"user-{name}", "secret-password")))
        finally:
            broker.stop()
        return {port}

    pcap = os.path.join(work, "scram.pcap")
    ports = capture(pcap, tansu_scram)
    write_frames(split_frames(pcap, ports), os.path.join(out, "tansu-scram"))

    # 3. librdkafka's mock cluster answering librdkafka.
    def mock():
        holder, bootstrap = mock_cluster_bootstrap()
        librdkafka_session(bootstrap, "golden-mock", ["none", "gzip", "snappy", "lz4", "zstd"])
        ports = {int(hp.rsplit(":", 1)[1]) for hp in bootstrap.split(",")}
        holder.flush(5)
        return ports

    pcap = os.path.join(work, "mock.pcap")
    ports = capture(pcap, mock)
    write_frames(split_frames(pcap, ports), os.path.join(out, "mock-cluster"))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
