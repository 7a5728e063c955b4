//! The subscriptions of a bus and the dispatch of one event to its handlers, shared by every bus.
//!
//! An event goes to the handlers of its type in the order they subscribed, then to the wildcard
//! handlers in theirs, one after the other (as eventsource-py runs them). Every handler runs even
//! when one before it failed; the failures are reported together.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::handler::{catching_panics, HandlerError, Prepared, Registration, Route, Subscriber};
use super::otel::{Attr, Kind, Span as OtelSpan};
use super::trace::TraceContext;
use super::wire::ReadEvent;

/// What [`subscribe`](super::EventBus::subscribe) returns: pass it to
/// [`unsubscribe`](super::EventBus::unsubscribe) to remove the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subscription(u64);

/// The handlers of a bus.
#[derive(Default)]
pub struct Registry {
    routes: RwLock<Vec<(Subscription, Route)>>,
    next: AtomicU64,
    /// How long one handler call may run (`None`: no limit).
    handler_timeout: Option<Duration>,
}

/// One handler's failure in a dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerFailure {
    /// The handler's subscription (to run it alone again).
    pub subscription: Subscription,
    /// The handler's name.
    pub handler: String,
    /// What it returned.
    pub error: HandlerError,
}

/// Told of each handler run: the handler's name, how long it ran, its error if it failed.
pub type HandlerRuns<'a> = dyn Fn(&str, Duration, Option<&HandlerError>) + Send + Sync + 'a;

/// How a dispatch went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dispatched {
    /// Every handler (at least one) succeeded.
    Handled,
    /// No handler takes events of this type.
    NoHandler,
    /// Handlers failed (the others succeeded).
    Failed(Vec<HandlerFailure>),
    /// A handler's type cannot read the payload.
    Undecodable(String),
}

impl Dispatched {
    /// The error type a dead letter names: the failing handler's, or `HandlerDispatchError`
    /// when several failed.
    pub fn error_type(failures: &[HandlerFailure]) -> String {
        match failures {
            [one] => one.error.type_name().to_string(),
            _ => "HandlerDispatchError".to_string(),
        }
    }

    /// The error text a dead letter carries: the failing handler's, or
    /// `N handler(s) failed during dispatch: a, b` when several failed.
    pub fn error_message(failures: &[HandlerFailure]) -> String {
        match failures {
            [one] => one.error.message().to_string(),
            many => format!(
                "{} handler(s) failed during dispatch: {}",
                many.len(),
                many.iter()
                    .map(|f| f.error.message())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

impl Registry {
    /// A registry whose handler calls may run `handler_timeout` at most each: one that runs
    /// longer is dropped (cancelled at its next await) and fails with `HandlerTimeout`.
    pub fn with_handler_timeout(handler_timeout: Option<Duration>) -> Registry {
        Registry {
            handler_timeout,
            ..Registry::default()
        }
    }

    /// Adds a handler.
    pub fn add(&self, route: Route) -> Subscription {
        let id = Subscription(self.next.fetch_add(1, Ordering::Relaxed));
        self.write().push((id, route));
        id
    }

    /// Adds every handler `subscriber` registers.
    pub fn register<S: Subscriber>(&self, subscriber: Arc<S>) -> Vec<Subscription> {
        let mut added = Vec::new();
        let mut add = |route: Route| added.push(self.add(route));
        subscriber.subscribe(&mut Registration { add: &mut add });
        added
    }

    /// Removes a handler; false when it was not there.
    pub fn remove(&self, id: Subscription) -> bool {
        let mut routes = self.write();
        let before = routes.len();
        routes.retain(|(s, _)| *s != id);
        routes.len() != before
    }

    /// True when some handler takes events of `event_type` (a wildcard handler takes all).
    pub fn handles(&self, event_type: &str) -> bool {
        self.read()
            .iter()
            .any(|(_, r)| r.event_type.is_none_or(|t| t == event_type))
    }

    /// The event types handlers subscribed to by type.
    pub fn event_types(&self) -> Vec<&'static str> {
        let mut types: Vec<&'static str> = self
            .read()
            .iter()
            .filter_map(|(_, r)| r.event_type)
            .collect();
        types.sort_unstable();
        types.dedup();
        types
    }

    /// Runs every handler of `event`; see the module docs for the order.
    pub async fn dispatch(&self, event: &ReadEvent) -> Dispatched {
        self.dispatch_to(event, None, None).await
    }

    /// Runs the handlers of `event` among `only` (all, when `None`), for a retry of those that
    /// failed: handlers that succeeded are not run again. Handlers unsubscribed since are skipped.
    /// `ran`, when given, hears of every handler run: its name, how long it took, its error.
    pub async fn dispatch_to(
        &self,
        event: &ReadEvent,
        only: Option<&[Subscription]>,
        ran: Option<&HandlerRuns<'_>>,
    ) -> Dispatched {
        let event_type = event.meta.event_type.as_str();
        let chosen = |id: &Subscription| only.is_none_or(|ids| ids.contains(id));
        // The handlers as they are now; subscribing or unsubscribing meanwhile does not change
        // this dispatch.
        let calls: Vec<(Subscription, Arc<str>, Prepared)> = {
            let routes = self.read();
            let typed = routes
                .iter()
                .filter(|(_, r)| r.event_type == Some(event_type));
            let wildcard = routes.iter().filter(|(_, r)| r.event_type.is_none());
            typed
                .chain(wildcard)
                .filter(|(id, _)| chosen(id))
                .map(|(id, r)| (*id, r.name.clone(), r.call.prepare(event)))
                .collect()
        };
        if calls.is_empty() {
            return Dispatched::NoHandler;
        }
        // An event a handler's type cannot read is handled by none: it goes to the dead letters
        // whole. (The prepared calls have not started; dropping them runs nothing.)
        let mut ready = Vec::with_capacity(calls.len());
        for (subscription, handler, call) in calls {
            match call {
                Prepared::Call(call) => ready.push((subscription, handler, call)),
                Prepared::Undecodable(why) => return Dispatched::Undecodable(why),
            }
        }
        let mut failures = Vec::new();
        for (subscription, handler, call) in ready {
            let span = tracing::debug_span!(
                "eventsource.event_bus.dispatch",
                otel.name = %format!("eventsource.event_bus.dispatch {handler}"),
                eventsource.handler.name = %handler,
                eventsource.event.type = %event.meta.event_type,
                eventsource.event.id = %event.meta.event_id,
            );
            let (mut otel, _) = OtelSpan::start(
                || format!("eventsource.event_bus.dispatch {handler}"),
                Kind::Internal,
                TraceContext::current().as_ref(),
                || {
                    vec![
                        ("eventsource.handler.name", Attr::Str(handler.to_string())),
                        (
                            "eventsource.event.type",
                            Attr::Str(event.meta.event_type.clone()),
                        ),
                        (
                            "eventsource.event.id",
                            Attr::Str(event.meta.event_id.to_string()),
                        ),
                    ]
                },
            );
            let call = tracing::Instrument::instrument(catching_panics(call), span);
            let started = ran.map(|_| std::time::Instant::now());
            let result = match self.handler_timeout {
                None => call.await,
                Some(limit) => tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
                    Err(HandlerError::new(
                        "HandlerTimeout",
                        format!("the handler did not finish within {limit:?}"),
                    ))
                }),
            };
            if let Err(e) = &result {
                otel.fail(e.to_string());
            }
            otel.end();
            if let (Some(ran), Some(started)) = (ran, started) {
                ran(&handler, started.elapsed(), result.as_ref().err());
            }
            if let Err(error) = result {
                failures.push(HandlerFailure {
                    subscription,
                    handler: handler.to_string(),
                    error,
                });
            }
        }
        if failures.is_empty() {
            Dispatched::Handled
        } else {
            Dispatched::Failed(failures)
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<(Subscription, Route)>> {
        self.routes.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<(Subscription, Route)>> {
        self.routes.write().unwrap_or_else(|e| e.into_inner())
    }
}
