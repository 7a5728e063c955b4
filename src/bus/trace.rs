//! W3C trace context (`traceparent`, `tracestate`, `baggage`) carried in event headers, so a
//! consumer's work joins the trace of the publish that caused it — across services and across
//! languages (eventsource-py reads and writes the same headers).
//!
//! Each publish is a span of its own: a child of the trace the publishing code runs in (the event
//! being handled, when a handler publishes), else the root of a new trace; its id goes into the
//! record's `traceparent`. The consumer's span is a child of that publish span (not of the caller
//! of the publish, as eventsource-py has it). Handlers run with their event's context current
//! ([`TraceContext::current`]), and the `tracing` spans of publish, consume and dispatch carry the
//! ids as fields (`trace_id`, `span_id`, `parent_span_id`).

use std::fmt;

/// A position in a trace: the trace, the span, its flags, and what travels with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace id (never all zeros).
    pub trace_id: [u8; 16],
    /// The span id (never all zeros).
    pub span_id: [u8; 8],
    /// The trace flags (bit 0: sampled).
    pub flags: u8,
    /// `tracestate`, passed on as is.
    pub tracestate: Option<String>,
    /// `baggage`, passed on as is.
    pub baggage: Option<String>,
}

tokio::task_local! {
    static CURRENT: TraceContext;
}

impl TraceContext {
    /// A new trace, sampled, with a fresh span.
    pub fn new_root() -> TraceContext {
        TraceContext {
            trace_id: random_nonzero(),
            span_id: new_span_id(),
            flags: 1,
            tracestate: None,
            baggage: None,
        }
    }

    /// A child of this context: the same trace, flags and baggage, a fresh span.
    pub fn child(&self) -> TraceContext {
        TraceContext {
            span_id: new_span_id(),
            ..self.clone()
        }
    }

    /// The context the current task runs in: the event a handler is handling, or one set with
    /// [`scope`](Self::scope).
    pub fn current() -> Option<TraceContext> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// Runs `f` with this context current.
    pub async fn scope<F: std::future::Future>(self, f: F) -> F::Output {
        CURRENT.scope(self, f).await
    }

    /// Reads `traceparent` (version 00, or a later version read as 00 ignoring what follows),
    /// with `tracestate` and `baggage`. `None` for a missing or malformed `traceparent`.
    pub fn extract(
        traceparent: Option<&str>,
        tracestate: Option<&str>,
        baggage: Option<&str>,
    ) -> Option<TraceContext> {
        let mut parts = traceparent?.trim().split('-');
        let (version, trace_id, span_id, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let more = parts.next().is_some();
        let version_number = u8::from_str_radix(version, 16).ok()?;
        if version.len() != 2 || version_number == 0xff || (version_number == 0 && more) {
            return None;
        }
        let trace_id: [u8; 16] = hex(trace_id)?;
        let span_id: [u8; 8] = hex(span_id)?;
        let [flags] = hex::<1>(flags)?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        let keep = |v: Option<&str>| {
            v.map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        Some(TraceContext {
            trace_id,
            span_id,
            flags,
            tracestate: keep(tracestate),
            baggage: keep(baggage),
        })
    }

    /// The `traceparent` header: `00-{trace id}-{span id}-{flags}`.
    pub fn traceparent(&self) -> String {
        let mut out = String::with_capacity(55);
        out.push_str("00-");
        push_hex(&mut out, &self.trace_id);
        out.push('-');
        push_hex(&mut out, &self.span_id);
        out.push('-');
        push_hex(&mut out, &[self.flags]);
        out
    }

    /// The headers that carry this context, in order; empty ones left out.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut h = vec![("traceparent", self.traceparent())];
        if let Some(s) = &self.tracestate {
            h.push(("tracestate", s.clone()));
        }
        if let Some(b) = &self.baggage {
            h.push(("baggage", b.clone()));
        }
        h
    }

    /// The trace id as hex.
    pub fn trace_id_hex(&self) -> String {
        to_hex(&self.trace_id)
    }

    /// The span id as hex.
    pub fn span_id_hex(&self) -> String {
        to_hex(&self.span_id)
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.traceparent())
    }
}

fn new_span_id() -> [u8; 8] {
    random_nonzero()
}

fn random_nonzero<const N: usize>() -> [u8; N] {
    loop {
        let mut bytes = [0u8; N];
        super::random::fill(&mut bytes);
        if bytes.iter().any(|b| *b != 0) {
            return bytes;
        }
    }
}

/// Exactly `N` bytes as `2N` lowercase hex digits (W3C allows no upper case).
fn hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.as_bytes();
    if s.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = digit(s[2 * i])? << 4 | digit(s[2 * i + 1])?;
    }
    Some(out)
}

fn to_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    push_hex(&mut out, bytes);
    out
}

/// Appends `bytes` in lower-case hex.
fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_traceparent_as_the_w3c_spec_and_python_do() {
        let ctx = TraceContext::extract(
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba90202-01"),
            None,
            Some("tenant=acme"),
        )
        .unwrap();
        assert_eq!(ctx.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ctx.span_id_hex(), "00f067aa0ba90202");
        assert_eq!(ctx.flags, 1);
        assert_eq!(
            ctx.headers(),
            [
                (
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba90202-01".to_string()
                ),
                ("baggage", "tenant=acme".to_string())
            ]
        );
        let child = ctx.child();
        assert_eq!(child.trace_id, ctx.trace_id);
        assert_ne!(child.span_id, ctx.span_id);
        assert_eq!(child.baggage, ctx.baggage);
    }

    #[test]
    fn malformed_traceparents_are_ignored() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba90202",
            "00-00000000000000000000000000000000-00f067aa0ba90202-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba90202-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba90202-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba90202-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba90202-01-extra",
        ] {
            assert!(
                TraceContext::extract(Some(bad), None, None).is_none(),
                "{bad}"
            );
        }
        // A later version may add fields.
        assert!(TraceContext::extract(
            Some("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba90202-01-extra"),
            None,
            None
        )
        .is_some());
    }

    #[tokio::test]
    async fn a_scope_makes_its_context_current() {
        assert!(TraceContext::current().is_none());
        let root = TraceContext::new_root();
        let seen = root.clone().scope(async { TraceContext::current() }).await;
        assert_eq!(seen, Some(root));
    }
}
