package dev.sagastream.peers.streams;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.apache.kafka.common.header.Headers;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.streams.processor.PunctuationType;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * The escrow saga's transitions (docs/escrow-saga.md) for the rows the
 * throughput bench drives (a delivered booking: requested, accepted,
 * picked up, in delivery, confirmed; escrow created, held, released) and
 * its timers; any other transition is dead-lettered, as sagastream does
 * with an input its table has no row for. The same commands and facts as
 * sagastream, the same money (fee in basis points, rounded down).
 */
final class EscrowProcessor implements Processor<String, byte[], String, byte[]> {
    static final String SAGAS = "escrow-sagas";
    static final String TIMERS = "escrow-timers";

    static final String HOLD_TIMEOUT = "hold_timeout";
    static final String AUTO_CONFIRM = "auto_confirm";
    static final String SETTLE_STUCK = "settle_stuck";
    static final String PURGE = "purge";

    /** Escrow phases in which money may still be held: auto-confirm applies. */
    private static final Set<String> UNSETTLED = Set.of("hold_requested", "created", "held");

    private static final List<String> BOOKING_ORDER =
            List.of("unknown", "requested", "accepted", "picked_up", "in_delivery", "delivered");

    private final EscrowPeer.Config config;
    private ProcessorContext<String, byte[]> context;
    private KeyValueStore<String, Saga> sagas;
    /** {@code <due ms, 13 digits>|<booking>|<timer>} to nothing: ordered, so due timers are a range. */
    private KeyValueStore<String, String> timers;

    EscrowProcessor(EscrowPeer.Config config) {
        this.config = config;
    }

    @Override
    public void init(ProcessorContext<String, byte[]> context) {
        this.context = context;
        this.sagas = context.getStateStore(SAGAS);
        this.timers = context.getStateStore(TIMERS);
        context.schedule(Duration.ofSeconds(1), PunctuationType.WALL_CLOCK_TIME, this::fireDue);
    }

    /** What a transition emits, in order: (sink, type, data). */
    private record Emit(String sink, String type, ObjectNode data) {}

    /** An input the table has no row for: dead-lettered under its class. */
    private static final class Refused extends Exception {
        final String kind;

        Refused(String kind, String message) {
            super(message);
            this.kind = kind;
        }
    }

    @Override
    public void process(Record<String, byte[]> record) {
        CloudEvent event;
        try {
            event = CloudEvent.read(record.headers(), record.value());
        } catch (CloudEvent.NotACloudEvent e) {
            deadLetter(record, "not_cloudevent", e.getMessage());
            return;
        }
        String key = record.key();
        if ("booking.completed".equals(event.type) || key == null) {
            return; // our own output read back (row 27)
        }
        // The store hands out a fresh copy (it keeps bytes): a refused input,
        // never put back, leaves the stored saga as it was.
        Saga saga = sagas.get(key);
        Saga working = saga == null ? new Saga() : saga;
        if (!working.firstTime(event.id)) {
            return; // a redelivered input
        }
        String before = saga == null ? "none" : working.phase();
        List<Emit> out = new ArrayList<>();
        try {
            apply(working, event, key, out);
        } catch (Refused e) {
            deadLetter(record, e.kind, e.getMessage());
            return;
        }
        finish(key, before, working, event.id, out);
    }

    private void apply(Saga s, CloudEvent e, String key, List<Emit> out) throws Refused {
        ObjectNode d = e.data;
        switch (e.type) {
            case "booking.requested" -> {
                if (!s.booking.equals("unknown") && !s.booking.equals("accepted")) {
                    throw invalid(s, e.type);
                }
                s.bookingNumber = d.path("booking_number").asText();
                s.ownerId = d.path("owner_id").asText();
                s.priceCents = d.path("estimated_price_cents").asLong();
                s.currency = d.path("currency").asText();
                ObjectNode started = data(key).put("booking_number", s.bookingNumber).put("owner_id", s.ownerId)
                        .put("amount_cents", s.priceCents).put("currency", s.currency);
                out.add(new Emit("escrow.saga.events", "escrow.saga.started", started));
                if (s.booking.equals("accepted") && s.escrow.equals("none")) {
                    requestHold(s, key, out); // row 4: the request arrived late
                } else {
                    s.booking = "requested";
                }
            }
            case "booking.accepted" -> {
                s.runnerId = d.path("runner_id").asText();
                if (s.booking.equals("requested") && s.escrow.equals("none")) {
                    s.booking = "accepted";
                    requestHold(s, key, out);
                } else if (s.booking.equals("unknown")) {
                    s.booking = "accepted";
                } else {
                    throw invalid(s, e.type);
                }
            }
            case "booking.pet_picked_up" -> progress(s, "picked_up", key, out);
            case "booking.delivery_in_progress" -> progress(s, "in_delivery", key, out);
            case "booking.delivery_confirmed" -> progress(s, "delivered", key, out);
            case "payment.escrow_created" -> {
                if (!s.escrow.equals("none") && !s.escrow.equals("hold_requested")) {
                    throw invalid(s, e.type);
                }
                s.paymentId = d.path("payment_id").asText();
                s.escrow = "created";
            }
            case "payment.escrow_held" -> {
                if (!s.escrow.equals("hold_requested") && !s.escrow.equals("created")) {
                    throw invalid(s, e.type);
                }
                long held = d.path("amount_cents").asLong();
                if (!d.path("currency").asText().equals(s.currency)) {
                    throw new Refused("currency_mismatch", "held in " + d.path("currency").asText() + ", priced in " + s.currency);
                }
                if (s.priceCents != null && held != s.priceCents) {
                    throw new Refused("amount_mismatch", "held " + held + ", priced " + s.priceCents);
                }
                s.paymentId = d.path("payment_id").asText(s.paymentId);
                s.heldCents = held;
                s.escrow = "held";
                cancel(s, key, HOLD_TIMEOUT);
                if (s.booking.equals("delivered")) {
                    release(s, key, "delivered", out); // row 6 with row 11's release
                }
            }
            case "payment.escrow_released" -> {
                if (!s.escrow.equals("release_requested")) {
                    throw invalid(s, e.type);
                }
                long payout = d.path("runner_payout_cents").asLong();
                long fee = d.path("platform_fee_cents").asLong();
                if (payout != s.payoutCents || fee != s.feeCents) {
                    throw new Refused("amount_mismatch", "released " + payout + " + " + fee + ", asked " + s.payoutCents + " + " + s.feeCents);
                }
                s.escrow = "released";
                s.done = true;
                cancel(s, key, SETTLE_STUCK);
                set(s, key, PURGE, config.purgeAfter());
                ObjectNode completed = data(key).put("booking_number", s.bookingNumber).put("runner_id", s.runnerId)
                        .put("owner_id", s.ownerId).put("final_price_cents", s.heldCents).put("currency", s.currency);
                out.add(new Emit("booking.events", "booking.completed", completed));
                ObjectNode fact = data(key).put("owner_id", s.ownerId).put("runner_id", s.runnerId)
                        .put("runner_payout_cents", payout).put("platform_fee_cents", fee).put("refunded_cents", 0L)
                        .put("currency", s.currency);
                out.add(new Emit("escrow.saga.events", "escrow.saga.completed", fact));
            }
            default -> throw invalid(s, e.type);
        }
    }

    /** Rows 10-12: a booking fact a step ahead; one behind is a reordered or repeated fact. */
    private void progress(Saga s, String to, String key, List<Emit> out) throws Refused {
        if (s.booking.equals("cancelled")) {
            throw invalid(s, "booking." + to);
        }
        if (BOOKING_ORDER.indexOf(to) <= BOOKING_ORDER.indexOf(s.booking)) {
            return;
        }
        s.booking = to;
        if (to.equals("in_delivery") && UNSETTLED.contains(s.escrow)) {
            s.inDeliverySince = Instant.now().toString();
            set(s, key, AUTO_CONFIRM, config.autoConfirmAfter());
        }
        if (to.equals("delivered")) {
            cancel(s, key, AUTO_CONFIRM);
            if (s.escrow.equals("held")) {
                release(s, key, "delivered", out);
            }
        }
    }

    private void requestHold(Saga s, String key, List<Emit> out) {
        ObjectNode hold = data(key).put("booking_number", s.bookingNumber).put("owner_id", s.ownerId)
                .put("runner_id", s.runnerId).put("amount_cents", s.priceCents).put("currency", s.currency);
        out.add(new Emit("payment.commands", "payment.escrow_hold_requested", hold));
        s.escrow = "hold_requested";
        set(s, key, HOLD_TIMEOUT, config.holdTimeout());
    }

    private void release(Saga s, String key, String reason, List<Emit> out) {
        long fee = s.heldCents * config.feeBps() / 10_000;
        s.feeCents = fee;
        s.payoutCents = s.heldCents - fee;
        ObjectNode release = data(key).put("payment_id", s.paymentId).put("runner_id", s.runnerId)
                .put("amount_cents", s.heldCents).put("runner_payout_cents", s.payoutCents)
                .put("platform_fee_cents", fee).put("currency", s.currency).put("reason", reason);
        out.add(new Emit("payment.commands", "payment.escrow_release_requested", release));
        s.escrow = "release_requested";
        set(s, key, SETTLE_STUCK, config.stuckAfter());
    }

    private static Refused invalid(Saga s, String what) {
        return new Refused("invalid_transition", what + " is not allowed in " + s.phase());
    }

    // --- timers --------------------------------------------------------------

    private void set(Saga s, String key, String name, Duration after) {
        cancel(s, key, name);
        long due = System.currentTimeMillis() + after.toMillis();
        s.timers.put(name, due);
        timers.put(timerKey(due, key, name), "");
    }

    private void cancel(Saga s, String key, String name) {
        Long due = s.timers.remove(name);
        if (due != null) {
            timers.delete(timerKey(due, key, name));
        }
    }

    private static String timerKey(long due, String key, String name) {
        return String.format("%013d|%s|%s", due, key, name);
    }

    private void fireDue(long now) {
        List<String> due = new ArrayList<>();
        try (KeyValueIterator<String, String> it = timers.range("0", String.format("%013d|\uffff", now))) {
            while (it.hasNext()) {
                due.add(it.next().key);
            }
        }
        for (String entry : due) {
            timers.delete(entry);
            String[] parts = entry.split("\\|", 3);
            long at = Long.parseLong(parts[0]);
            String key = parts[1];
            String name = parts[2];
            Saga saga = sagas.get(key);
            if (saga == null || !Long.valueOf(at).equals(saga.timers.get(name))) {
                continue; // cancelled or re-set since
            }
            Saga s = saga;
            s.timers.remove(name);
            String before = s.phase();
            List<Emit> out = new ArrayList<>();
            String cause = "timer:" + name + ":" + at;
            switch (name) {
                case HOLD_TIMEOUT -> {
                    if (s.escrow.equals("hold_requested") || s.escrow.equals("created")) {
                        ObjectNode cancel = data(key).put("booking_number", s.bookingNumber).put("reason", "hold_timeout");
                        out.add(new Emit("booking.commands", "booking.cancel_requested", cancel));
                        s.escrow = "failed";
                    }
                }
                case AUTO_CONFIRM -> {
                    if (s.booking.equals("in_delivery")) {
                        ObjectNode confirmed = data(key).put("owner_id", s.ownerId).put("runner_id", s.runnerId)
                                .put("in_delivery_since", s.inDeliverySince);
                        out.add(new Emit("escrow.saga.events", "escrow.saga.auto_confirmed", confirmed));
                        s.booking = "delivered";
                        if (s.escrow.equals("held")) {
                            release(s, key, "auto_confirmed", out);
                        }
                    }
                }
                case SETTLE_STUCK -> {
                    ObjectNode stuck = data(key).put("owner_id", s.ownerId).put("runner_id", s.runnerId)
                            .put("state", s.phase()).put("waiting_for", "payment").put("since", Instant.ofEpochMilli(at).toString());
                    out.add(new Emit("escrow.saga.events", "escrow.saga.stuck", stuck));
                    set(s, key, SETTLE_STUCK, config.stuckAfter());
                }
                case PURGE -> {
                    for (String t : new ArrayList<>(s.timers.keySet())) {
                        cancel(s, key, t);
                    }
                    sagas.delete(key);
                    continue;
                }
                default -> {
                }
            }
            finish(key, before, s, cause, out);
        }
    }

    // --- output --------------------------------------------------------------

    private void finish(String key, String before, Saga s, String cause, List<Emit> out) {
        if (!before.equals(s.phase())) {
            ObjectNode changed = data(key).put("owner_id", s.ownerId).put("runner_id", s.runnerId)
                    .put("from", before).put("to", s.phase()).put("cause_event_id", cause);
            out.add(new Emit("escrow.saga.events", "escrow.saga.state_changed", changed));
        }
        sagas.put(key, s);
        Instant now = Instant.now();
        int occurrence = 0;
        for (Emit e : out) {
            e.data.put("occurred_at", now.toString());
            byte[] value;
            try {
                value = CloudEvent.JSON.writeValueAsBytes(e.data);
            } catch (IOException ex) {
                throw new IllegalStateException("a JSON tree always serialises", ex);
            }
            Headers headers = CloudEvent.headers(e.type, key, cause, occurrence++, now);
            context.forward(new Record<>(key, value, now.toEpochMilli(), headers), e.sink);
        }
    }

    private void deadLetter(Record<String, byte[]> record, String kind, String message) {
        RecordHeaders headers = new RecordHeaders(record.headers().toArray());
        headers.add("__streams.errors.exception", kind.getBytes(StandardCharsets.UTF_8));
        headers.add("__streams.errors.message", message.getBytes(StandardCharsets.UTF_8));
        context.forward(new Record<>(record.key(), record.value(), record.timestamp(), headers), "dlq");
    }

    private static ObjectNode data(String key) {
        return CloudEvent.JSON.createObjectNode().put("booking_id", key);
    }
}
