"""The escrow saga on Quix Streams: the peer the bench runs beside
sagastream and Kafka Streams on the same topics and records
(docs/benchmarks.md).

    python escrow_peer.py BOOTSTRAP PREFIX CONSUMER_GROUP FEE_BPS STATE_DIR

Exactly-once, the saga state in Quix's state store (RocksDB with its
changelog), the two input topics concatenated with Quix's time alignment.
It implements the transition-table rows the bench drives (a delivered
booking and its escrow) and dead-letters anything else. Timers are kept in
the state as sagastream keeps them, but none fires: Quix Streams has no
wall-clock scheduling, and in the bench none is due. Prints
"state RUNNING" once its partitions are assigned.
"""
import json
import sys
import uuid
from datetime import datetime, timezone

from quixstreams import Application
from quixstreams.models.serializers import Serializer

BOOKING_ORDER = ["unknown", "requested", "accepted", "picked_up", "in_delivery", "delivered"]
# sagastream's defaults, in milliseconds (docs/escrow-saga.md).
HOLD_TIMEOUT = 15 * 60_000
AUTO_CONFIRM = 24 * 3_600_000
SETTLE_STUCK = 10 * 60_000
PURGE = 7 * 24 * 3_600_000
DEDUP_WINDOW = 32
SOURCE = "/sagastream/peers/quix"


class Refused(Exception):
    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


class Outputs(Serializer):
    """An output item's payload: its data as JSON, or a DLQ record's own bytes."""

    def __call__(self, value, ctx):
        if "raw" in value:
            return value["raw"]
        return json.dumps(value["data"], separators=(",", ":")).encode()


class Saga:
    def __init__(self, fee_bps):
        self.fee_bps = fee_bps

    def step(self, value, key, timestamp, headers, state):
        headers = headers or []
        h = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in headers}
        event_type, event_id = h.get("ce_type"), h.get("ce_id")
        if h.get("ce_specversion") != "1.0" or not event_type or not event_id:
            return [dead_letter(value, headers, "not_cloudevent", "no ce_specversion 1.0, ce_id and ce_type headers")]
        try:
            data = json.loads(value)
            if not isinstance(data, dict):
                raise ValueError("not an object")
        except ValueError as e:
            return [dead_letter(value, headers, "not_cloudevent", f"data is not a JSON object: {e}")]
        if event_type == "booking.completed" or key is None:
            return []  # our own output read back (row 27)
        s = state.get("saga")
        if s is None:
            s = {"booking": "unknown", "escrow": "none", "seen": [], "timers": {}}
            before = "none"
        else:
            before = phase(s)
        if event_id in s["seen"]:
            return []  # a redelivered input
        s["seen"] = (s["seen"] + [event_id])[-DEDUP_WINDOW:]
        out = []
        try:
            self.apply(s, event_type, data, key, out)
        except Refused as e:
            return [dead_letter(value, headers, e.kind, str(e))]
        if before != phase(s):
            out.append(("escrow.saga.events", "escrow.saga.state_changed", {
                "booking_id": key, "owner_id": s.get("owner_id"), "runner_id": s.get("runner_id"),
                "from": before, "to": phase(s), "cause_event_id": event_id}))
        state.set("saga", s)
        return emit(key, event_id, out)

    def apply(self, s, t, d, key, out):
        if t == "booking.requested":
            if s["booking"] not in ("unknown", "accepted"):
                raise invalid(s, t)
            s.update(booking_number=d["booking_number"], owner_id=d["owner_id"],
                     price_cents=d["estimated_price_cents"], currency=d["currency"])
            out.append(("escrow.saga.events", "escrow.saga.started", {
                "booking_id": key, "booking_number": s["booking_number"], "owner_id": s["owner_id"],
                "amount_cents": s["price_cents"], "currency": s["currency"]}))
            if s["booking"] == "accepted" and s["escrow"] == "none":
                self.request_hold(s, key, out)  # row 4: the request arrived late
            else:
                s["booking"] = "requested"
        elif t == "booking.accepted":
            s["runner_id"] = d["runner_id"]
            if s["booking"] == "requested" and s["escrow"] == "none":
                s["booking"] = "accepted"
                self.request_hold(s, key, out)
            elif s["booking"] == "unknown":
                s["booking"] = "accepted"
            else:
                raise invalid(s, t)
        elif t in ("booking.pet_picked_up", "booking.delivery_in_progress", "booking.delivery_confirmed"):
            to = {"booking.pet_picked_up": "picked_up", "booking.delivery_in_progress": "in_delivery",
                  "booking.delivery_confirmed": "delivered"}[t]
            self.progress(s, to, key, out)
        elif t == "payment.escrow_created":
            if s["escrow"] not in ("none", "hold_requested"):
                raise invalid(s, t)
            s["payment_id"] = d["payment_id"]
            s["escrow"] = "created"
        elif t == "payment.escrow_held":
            if s["escrow"] not in ("hold_requested", "created"):
                raise invalid(s, t)
            if d["currency"] != s.get("currency"):
                raise Refused("currency_mismatch", f"held in {d['currency']}, priced in {s.get('currency')}")
            if s.get("price_cents") is not None and d["amount_cents"] != s["price_cents"]:
                raise Refused("amount_mismatch", f"held {d['amount_cents']}, priced {s['price_cents']}")
            s["payment_id"] = d.get("payment_id", s.get("payment_id"))
            s["held_cents"] = d["amount_cents"]
            s["escrow"] = "held"
            s["timers"].pop("hold_timeout", None)
            if s["booking"] == "delivered":
                self.release(s, key, "delivered", out)
        elif t == "payment.escrow_released":
            if s["escrow"] != "release_requested":
                raise invalid(s, t)
            payout, fee = d["runner_payout_cents"], d["platform_fee_cents"]
            if payout != s["payout_cents"] or fee != s["fee_cents"]:
                raise Refused("amount_mismatch", f"released {payout} + {fee}, asked {s['payout_cents']} + {s['fee_cents']}")
            s["escrow"] = "released"
            s["done"] = True
            s["timers"].pop("settle_stuck", None)
            s["timers"]["purge"] = now_ms() + PURGE
            out.append(("booking.events", "booking.completed", {
                "booking_id": key, "booking_number": s["booking_number"], "runner_id": s["runner_id"],
                "owner_id": s["owner_id"], "final_price_cents": s["held_cents"], "currency": s["currency"]}))
            out.append(("escrow.saga.events", "escrow.saga.completed", {
                "booking_id": key, "owner_id": s["owner_id"], "runner_id": s["runner_id"],
                "runner_payout_cents": payout, "platform_fee_cents": fee, "refunded_cents": 0,
                "currency": s["currency"]}))
        else:
            raise invalid(s, t)

    def progress(self, s, to, key, out):
        if s["booking"] == "cancelled":
            raise invalid(s, to)
        if BOOKING_ORDER.index(to) <= BOOKING_ORDER.index(s["booking"]):
            return  # a reordered or repeated fact
        s["booking"] = to
        if to == "in_delivery" and s["escrow"] in ("hold_requested", "created", "held"):
            s["in_delivery_since"] = now_iso()
            s["timers"]["auto_confirm"] = now_ms() + AUTO_CONFIRM
        if to == "delivered":
            s["timers"].pop("auto_confirm", None)
            if s["escrow"] == "held":
                self.release(s, key, "delivered", out)

    def request_hold(self, s, key, out):
        out.append(("payment.commands", "payment.escrow_hold_requested", {
            "booking_id": key, "booking_number": s["booking_number"], "owner_id": s["owner_id"],
            "runner_id": s["runner_id"], "amount_cents": s["price_cents"], "currency": s["currency"]}))
        s["escrow"] = "hold_requested"
        s["timers"]["hold_timeout"] = now_ms() + HOLD_TIMEOUT

    def release(self, s, key, reason, out):
        fee = s["held_cents"] * self.fee_bps // 10_000
        s["fee_cents"], s["payout_cents"] = fee, s["held_cents"] - fee
        out.append(("payment.commands", "payment.escrow_release_requested", {
            "booking_id": key, "payment_id": s["payment_id"], "runner_id": s["runner_id"],
            "amount_cents": s["held_cents"], "runner_payout_cents": s["payout_cents"],
            "platform_fee_cents": fee, "currency": s["currency"], "reason": reason}))
        s["escrow"] = "release_requested"
        s["timers"]["settle_stuck"] = now_ms() + SETTLE_STUCK


def phase(s):
    return f"{s['booking']}/{s['escrow']}"


def invalid(s, what):
    return Refused("invalid_transition", f"{what} is not allowed in {phase(s)}")


def now_ms():
    return int(datetime.now(timezone.utc).timestamp() * 1000)


def now_iso():
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def emit(key, cause, out):
    """Output items: their ids derived from what caused them, so a replay writes the same ids."""
    now = now_iso()
    items = []
    for occurrence, (sink, event_type, data) in enumerate(out):
        data["occurred_at"] = now
        name = f"escrow-peer\n{cause}\n{event_type}\n{occurrence}"
        headers = [
            ("ce_specversion", b"1.0"),
            ("ce_id", str(uuid.uuid5(uuid.NAMESPACE_URL, name)).encode()),
            ("ce_source", SOURCE.encode()),
            ("ce_type", event_type.encode()),
            ("ce_time", now.encode()),
            ("ce_subject", key.encode()),
            ("ce_partitionkey", key.encode()),
            ("content-type", b"application/json"),
        ]
        items.append({"sink": sink, "headers": headers, "data": data})
    return items


def dead_letter(value, headers, kind, message):
    headers = list(headers) + [("__streams.errors.exception", kind.encode()),
                               ("__streams.errors.message", message.encode())]
    return {"sink": "escrow.saga.dlq", "headers": headers, "raw": value}


class PeerApplication(Application):
    def _on_assign(self, *args, **kwargs):
        # Quix has no state listener; the first assignment (with its
        # changelog recovery set up) is when it starts processing.
        super()._on_assign(*args, **kwargs)
        if not getattr(self, "_said_running", False):
            self._said_running = True
            print("state RUNNING", flush=True)


def main(argv):
    if len(argv) != 6:
        raise SystemExit(__doc__)
    bootstrap, prefix, group, fee_bps, state_dir = argv[1:]
    app = PeerApplication(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        # sagastream's commit cadence.
        commit_interval=0.1,
        processing_guarantee="exactly-once",
        state_dir=state_dir,
        # The Java clients' partitioner, as the other runners and the inputs use.
        producer_extra_config={"partitioner": "murmur2_random"},
    )
    def topic(name):
        return app.topic(prefix + name, key_deserializer="str", value_deserializer="bytes",
                         key_serializer="str", value_serializer=Outputs())

    # booking.events is an input and an output (booking.completed): one topic object.
    inputs = [topic("booking.events"), topic("payment.events")]
    outputs = {t: topic(t) for t in ("payment.commands", "booking.commands", "escrow.saga.events", "escrow.saga.dlq")}
    outputs["booking.events"] = inputs[0]
    saga = Saga(int(fee_bps))
    sdf = app.dataframe(inputs[0]).concat(app.dataframe(inputs[1]))
    sdf = sdf.apply(saga.step, stateful=True, metadata=True, expand=True)
    sdf = sdf.set_headers(lambda value, key, timestamp, headers: value["headers"])
    sdf.to_topic(lambda value, key, timestamp, headers: outputs[value["sink"]])
    app.run()


if __name__ == "__main__":
    main(sys.argv)
