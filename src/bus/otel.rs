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
