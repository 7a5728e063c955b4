"""eventsource-py's KafkaEventBus as a test peer for kbus.

Run by the kbus tests (tests/interop_eventsource.rs) with the Python environment that
scripts/install-test-deps builds. Every line it prints on stdout is one JSON object; diagnostics go
to stderr.

    eventsource_peer.py publish --bootstrap B --prefix P --count N [--aggregate UUID]
        Publishes N OrderPlaced events (order_number ORD-py-0..N-1, aggregate version 1..N on one
        aggregate when --aggregate is given, else one aggregate each), prints
        {"published": event_id} for each, then {"done": N}.

    eventsource_peer.py consume --bootstrap B --prefix P --group G --count N [--seconds S]
        Joins group G (aiokafka's roundrobin assignor, eventsource-py's only one) and prints
        {"handled": event_id, "order_number": ..., "aggregate_version": ...} for every OrderPlaced
        it handles; {"ready": true} once it consumes, and {"done": n} after N events or S seconds.
"""

import argparse
import asyncio
import json
import sys
from uuid import UUID, uuid4

from eventsource import DomainEvent, register_event
from eventsource.adapters.kafka import KafkaEventBus, KafkaEventBusConfig


@register_event
class OrderPlaced(DomainEvent):
    event_type: str = "OrderPlaced"
    aggregate_type: str = "Order"
    order_number: str
    total_cents: int


def say(obj):
    print(json.dumps(obj), flush=True)


def config(args, group="kbus-interop-publisher"):
    return KafkaEventBusConfig(
        bootstrap_servers=args.bootstrap,
        topic_prefix=args.prefix,
        consumer_group=group,
        enable_tracing=False,
        enable_metrics=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=500,
    )


async def publish(args):
    bus = KafkaEventBus(config=config(args))
    await bus.connect()
    try:
        aggregate = UUID(args.aggregate) if args.aggregate else None
        events = [
            OrderPlaced(
                aggregate_id=aggregate or uuid4(),
                aggregate_version=(i + 1) if aggregate else 1,
                order_number=f"ORD-py-{i}",
                total_cents=100 + i,
            )
            for i in range(args.count)
        ]
        await bus.publish(events)
        for e in events:
            say({"published": str(e.event_id)})
        say({"done": len(events)})
    finally:
        await bus.disconnect()


async def consume(args):
    bus = KafkaEventBus(config=config(args, args.group))
    handled = []
    finished = asyncio.Event()

    async def on_order(event):
        handled.append(event.event_id)
        say(
            {
                "handled": str(event.event_id),
                "order_number": event.order_number,
                "aggregate_version": event.aggregate_version,
            }
        )
        if len(handled) >= args.count:
            finished.set()

    bus.subscribe(OrderPlaced, on_order)
    await bus.connect()
    task = bus.start_consuming_in_background()
    say({"ready": True})
    try:
        await asyncio.wait_for(finished.wait(), timeout=args.seconds)
    except asyncio.TimeoutError:
        pass
    say({"done": len(handled)})
    await bus.stop_consuming()
    task.cancel()
    await bus.disconnect()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["publish", "consume"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--group", default="kbus-interop")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--aggregate")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    asyncio.run(publish(args) if args.command == "publish" else consume(args))


if __name__ == "__main__":
    sys.exit(main())
