//! OpenTelemetry spans for the bus (feature `opentelemetry`): publish (PRODUCER), consume
//! (CONSUMER, a child of the publish span whose context the record carries) and dispatch
//! (INTERNAL, one per handler), from the tracer `eventsource.adapters.kafka.bus` of the global
//! tracer provider, named and attributed as eventsource-py names them. The ids of these spans are
//! the ones that travel in `traceparent`, so a trace crosses services and languages.
//!
//! Without the feature, [`Span`] is an empty value and the bus makes its own ids ([`super::trace`]).

use super::trace::TraceContext;

/// What a span is, in OpenTelemetry's terms.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Producer,
    Consumer,
    Internal,
}

/// An attribute value.
#[cfg_attr(not(feature = "opentelemetry"), allow(dead_code))]
pub(crate) enum Attr {
    Str(String),
    Int(i64),
}

/// A span under way; ended when dropped (or with [`end`](Self::end)).
pub(crate) struct Span {
    #[cfg(feature = "opentelemetry")]
    span: Option<opentelemetry::global::BoxedSpan>,
}

#[cfg(feature = "opentelemetry")]
mod imp {
    use opentelemetry::trace::{
        Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
        TraceState, Tracer,
    };
    use opentelemetry::{global, Context, KeyValue};

    use super::{Attr, Kind, Span, TraceContext};

    pub(crate) const TRACER: &str = "eventsource.adapters.kafka.bus";

    pub(super) fn start(
        name: String,
        kind: Kind,
        parent: Option<&TraceContext>,
        attributes: Vec<(&'static str, Attr)>,
    ) -> (Span, Option<TraceContext>) {
        let tracer = global::tracer(TRACER);
        let parent_cx = match parent {
            Some(p) => Context::new().with_remote_span_context(SpanContext::new(
                TraceId::from_bytes(p.trace_id),
                SpanId::from_bytes(p.span_id),
                TraceFlags::new(p.flags),
                true,
                TraceState::default(),
            )),
            None => Context::new(),
        };
        let kind = match kind {
            Kind::Producer => SpanKind::Producer,
            Kind::Consumer => SpanKind::Consumer,
            Kind::Internal => SpanKind::Internal,
        };
        let attributes: Vec<KeyValue> = attributes.into_iter().map(|(k, v)| kv(k, v)).collect();
        let span = tracer
            .span_builder(name)
            .with_kind(kind)
            .with_attributes(attributes)
            .start_with_context(&tracer, &parent_cx);
        // Without a tracer provider (or for a span sampled out) the span records nothing and
        // may carry its parent's ids: the bus makes its own then.
        if !span.is_recording() {
            return (Span { span: None }, None);
        }
        let sc = span.span_context().clone();
        let ctx = sc.is_valid().then(|| TraceContext {
            trace_id: sc.trace_id().to_bytes(),
            span_id: sc.span_id().to_bytes(),
            flags: sc.trace_flags().to_u8(),
            tracestate: parent.and_then(|p| p.tracestate.clone()),
            baggage: parent.and_then(|p| p.baggage.clone()),
        });
        (Span { span: Some(span) }, ctx)
    }

    fn kv(key: &'static str, value: Attr) -> KeyValue {
        match value {
            Attr::Str(s) => KeyValue::new(key, s),
            Attr::Int(i) => KeyValue::new(key, i),
        }
    }

    impl Span {
        pub(crate) fn set(&mut self, key: &'static str, value: Attr) {
            if let Some(span) = &mut self.span {
                span.set_attribute(kv(key, value));
            }
        }

        pub(crate) fn fail(&mut self, message: String) {
            if let Some(span) = &mut self.span {
                span.set_status(Status::error(message));
            }
        }
    }
}

/// The tracer the bus's spans come from (eventsource-py's name).
#[cfg(feature = "opentelemetry")]
pub const TRACER: &str = imp::TRACER;

impl Span {
    /// Starts a span named `name` under `parent` (or a new trace). Returns the trace context the
    /// span stands for, to carry on (`None` without the feature, or with no tracer provider set:
    /// the caller makes its own ids then).
    pub(crate) fn start(
        name: impl FnOnce() -> String,
        kind: Kind,
        parent: Option<&TraceContext>,
        attributes: impl FnOnce() -> Vec<(&'static str, Attr)>,
    ) -> (Span, Option<TraceContext>) {
        #[cfg(feature = "opentelemetry")]
        {
            imp::start(name(), kind, parent, attributes())
        }
        #[cfg(not(feature = "opentelemetry"))]
        {
            let _ = (name, kind, parent, attributes);
            (Span {}, None)
        }
    }

    /// Sets an attribute (after the fact: the partition and offset of an acknowledged publish).
    #[cfg(not(feature = "opentelemetry"))]
    pub(crate) fn set(&mut self, _key: &'static str, _value: Attr) {}

    /// Marks the span failed.
    #[cfg(not(feature = "opentelemetry"))]
    pub(crate) fn fail(&mut self, _message: String) {}

    /// Ends the span now.
    pub(crate) fn end(self) {}

    /// No span (tracing is off).
    pub(crate) fn none() -> Span {
        Span {
            #[cfg(feature = "opentelemetry")]
            span: None,
        }
    }
}

/// The bus's OpenTelemetry metrics (feature `opentelemetry`, `enable_metrics`): eventsource-py's
/// instruments from the meter `eventsource.bus.kafka` of the global meter provider — counters
/// `kafka.eventbus.messages.published|consumed|dlq`, `kafka.eventbus.handler.invocations|errors`,
/// `kafka.eventbus.publish.errors`, `kafka.eventbus.rebalances`,
/// `kafka.eventbus.connection.errors`, `kafka.eventbus.reconnections`, histograms (milliseconds)
/// `kafka.eventbus.publish.duration`, `kafka.eventbus.consume.duration`,
/// `kafka.eventbus.handler.duration`, `kafka.eventbus.batch.size`, and gauges
/// `kafka.eventbus.consumer.lag` (per partition) and `kafka.eventbus.connections.active`. Without
/// the feature (or with metrics off), every call does nothing.
#[derive(Default)]
pub(crate) struct BusMetrics {
    #[cfg(feature = "opentelemetry")]
    instruments: Option<instruments::Instruments>,
}

#[cfg(feature = "opentelemetry")]
mod instruments {
    use opentelemetry::global;
    use opentelemetry::metrics::{Counter, Gauge, Histogram};

    pub(crate) const METER: &str = "eventsource.bus.kafka";

    pub(crate) struct Instruments {
        pub published: Counter<u64>,
        pub consumed: Counter<u64>,
        pub dlq: Counter<u64>,
        pub invocations: Counter<u64>,
        pub handler_errors: Counter<u64>,
        pub publish_errors: Counter<u64>,
        pub rebalances: Counter<u64>,
        pub connection_errors: Counter<u64>,
        pub reconnections: Counter<u64>,
        pub consume_duration: Histogram<f64>,
        pub lag: Gauge<i64>,
        pub connections: Gauge<u64>,
        pub publish_duration: Histogram<f64>,
        pub handler_duration: Histogram<f64>,
        pub batch_size: Histogram<u64>,
    }

    impl Instruments {
        pub fn new() -> Instruments {
            let meter = global::meter(METER);
            Instruments {
                published: meter
                    .u64_counter("kafka.eventbus.messages.published")
                    .build(),
                consumed: meter
                    .u64_counter("kafka.eventbus.messages.consumed")
                    .build(),
                dlq: meter.u64_counter("kafka.eventbus.messages.dlq").build(),
                invocations: meter
                    .u64_counter("kafka.eventbus.handler.invocations")
                    .build(),
                handler_errors: meter.u64_counter("kafka.eventbus.handler.errors").build(),
                publish_errors: meter.u64_counter("kafka.eventbus.publish.errors").build(),
                rebalances: meter.u64_counter("kafka.eventbus.rebalances").build(),
                connection_errors: meter
                    .u64_counter("kafka.eventbus.connection.errors")
                    .build(),
                reconnections: meter.u64_counter("kafka.eventbus.reconnections").build(),
                consume_duration: meter
                    .f64_histogram("kafka.eventbus.consume.duration")
                    .with_unit("ms")
                    .build(),
                lag: meter.i64_gauge("kafka.eventbus.consumer.lag").build(),
                connections: meter.u64_gauge("kafka.eventbus.connections.active").build(),
                publish_duration: meter
                    .f64_histogram("kafka.eventbus.publish.duration")
                    .with_unit("ms")
                    .build(),
                handler_duration: meter
                    .f64_histogram("kafka.eventbus.handler.duration")
                    .with_unit("ms")
                    .build(),
                batch_size: meter.u64_histogram("kafka.eventbus.batch.size").build(),
            }
        }
    }
}

/// The meter the bus's metrics come from (eventsource-py's name).
#[cfg(feature = "opentelemetry")]
pub const METER: &str = instruments::METER;

impl BusMetrics {
    /// The instruments, when `enabled` (and the feature is on).
    pub(crate) fn new(enabled: bool) -> BusMetrics {
        #[cfg(feature = "opentelemetry")]
        {
            BusMetrics {
                instruments: enabled.then(instruments::Instruments::new),
            }
        }
        #[cfg(not(feature = "opentelemetry"))]
        {
            let _ = enabled;
            BusMetrics {}
        }
    }

    /// A publish of `n` events acknowledged after `elapsed`.
    pub(crate) fn published(&self, n: u64, elapsed: std::time::Duration) {
        #[cfg(feature = "opentelemetry")]
        if let Some(i) = &self.instruments {
            i.published.add(n, &[]);
            i.batch_size.record(n, &[]);
            i.publish_duration.record(elapsed.as_secs_f64() * 1e3, &[]);
        }
        #[cfg(not(feature = "opentelemetry"))]
        let _ = (n, elapsed);
    }

    /// A publish failed.
    pub(crate) fn publish_failed(&self) {
        #[cfg(feature = "opentelemetry")]
        if let Some(i) = &self.instruments {
            i.publish_errors.add(1, &[]);
        }
    }

    /// `n` records were read.
    pub(crate) fn consumed(&self, n: u64) {
        #[cfg(feature = "opentelemetry")]
        if let Some(i) = &self.instruments {
            i.consumed.add(n, &[]);
        }
        #[cfg(not(feature = "opentelemetry"))]
        let _ = n;
    }

    /// True when handler runs are measured (the instruments are on).
    pub(crate) fn measures_handlers(&self) -> bool {
        #[cfg(feature = "opentelemetry")]
        let on = self.instruments.is_some();
        #[cfg(not(feature = "opentelemetry"))]
        let on = false;
        on
    }

    /// One handler ran for an event of `event_type`, as eventsource-py counts it: its duration
    /// always, an invocation when it succeeded, an error (with the error's type) when it failed;
    /// each with the handler's name and the event type.
    pub(crate) fn handler_ran(
        &self,
        handler: &str,
        event_type: &str,
        elapsed: std::time::Duration,
        error: Option<&super::handler::HandlerError>,
    ) {
        #[cfg(feature = "opentelemetry")]
        if let Some(i) = &self.instruments {
            use opentelemetry::KeyValue;
            let mut attributes = vec![
                KeyValue::new("handler.name", handler.to_string()),
                KeyValue::new("event.type", event_type.to_string()),
            ];
            i.handler_duration
                .record(elapsed.as_secs_f64() * 1e3, &attributes);
            match error {
                None => i.invocations.add(1, &attributes),
                Some(e) => {
                    attributes.push(KeyValue::new("error.type", e.type_name().to_string()));
                    i.handler_errors.add(1, &attributes);
                }
            }
        }
        #[cfg(not(feature = "opentelemetry"))]
        let _ = (handler, event_type, elapsed, error);
    }

    /// A record went to the dead-letter topic.
    pub(crate) fn dead_lettered(&self) {
        #[cfg(feature = "opentelemetry")]
        if let Some(i) = &self.instruments {
            i.dlq.add(1, &[]);
        }
    }

    /// A record's whole way through the bus (handlers, retries, dead letter) took `elapsed`.
    pub(crate) fn consume_took(&self, elapsed: std::time::Duration) {
        #[cfg(feature = "opentelemetry")]
        if let Some(i) = &self.instruments {
            i.consume_duration.record(elapsed.as_secs_f64() * 1e3, &[]);
        }
        #[cfg(not(feature = "opentelemetry"))]
        let _ = elapsed;
    }

    /// `partition` is `lag` records behind its high watermark.
    pub(crate) fn lag(&self, partition: i32, lag: i64) {
        #[cfg(feature = "opentelemetry")]
        if let Some(i) = &self.instruments {
            i.lag.record(
                lag,
                &[opentelemetry::KeyValue::new(
                    "messaging.kafka.partition",
                    i64::from(partition),
                )],
            );
        }
        #[cfg(not(feature = "opentelemetry"))]
        let _ = (partition, lag);
    }

    /// The client keeps retrying a failing connection or request (a streak it reported).
    pub(crate) fn connection_error(&self) {
        #[cfg(feature = "opentelemetry")]
        if let Some(i) = &self.instruments {
            i.connection_errors.add(1, &[]);
        }
    }

    /// `n` more reconnections happened; `active` connections are open now.
    pub(crate) fn connections(&self, reconnections: u64, active: u64) {
        #[cfg(feature = "opentelemetry")]
        if let Some(i) = &self.instruments {
            if reconnections > 0 {
                i.reconnections.add(reconnections, &[]);
            }
            i.connections.record(active, &[]);
        }
        #[cfg(not(feature = "opentelemetry"))]
        let _ = (reconnections, active);
    }

    /// A rebalance gave the member its partitions.
    pub(crate) fn rebalanced(&self) {
        #[cfg(feature = "opentelemetry")]
        if let Some(i) = &self.instruments {
            i.rebalances.add(1, &[]);
        }
    }
}
