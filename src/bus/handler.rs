//! Handlers: async functions (or objects) that receive the events of one type, or of every type.
//!
//! A closure `Fn(Arc<Envelope<E>>) -> impl Future<Output = HandlerResult>` is a handler; so is any
//! type implementing [`Handler`]. A handler's name is what dead letters, logs and spans call it.
//! A [`Subscriber`] object declares the types it handles and registers all its handlers at once.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::event::{Envelope, Event, RawPayload};
use super::wire::ReadEvent;

/// A boxed future that can move between threads.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What a handler returns.
pub type HandlerResult = Result<(), HandlerError>;

/// Why a handler failed: the error's type name (`dlq_error_type`) and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerError {
    type_name: String,
    message: String,
}

impl HandlerError {
    /// A failure of type `type_name` saying `message`.
    pub fn new(type_name: impl Into<String>, message: impl Into<String>) -> HandlerError {
        HandlerError {
            type_name: type_name.into(),
            message: message.into(),
        }
    }

    /// A failure from any error: its type's bare name (`Timeout` for `my_crate::Timeout`) and
    /// its text.
    pub fn from_error<E: std::error::Error + ?Sized>(error: &E) -> HandlerError {
        HandlerError::new(bare_type_name::<E>(), error.to_string())
    }

    /// The error's type name.
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// The error's text.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.type_name, self.message)
    }
}

impl std::error::Error for HandlerError {}

impl From<String> for HandlerError {
    fn from(message: String) -> HandlerError {
        HandlerError::new("HandlerError", message)
    }
}

impl From<&str> for HandlerError {
    fn from(message: &str) -> HandlerError {
        HandlerError::new("HandlerError", message)
    }
}

/// `Timeout` for `my_crate::errors::Timeout<T>`.
fn bare_type_name<T: ?Sized>() -> String {
    let full = std::any::type_name::<T>();
    let head = full.split('<').next().unwrap_or(full);
    head.rsplit("::").next().unwrap_or(head).to_string()
}

/// Handles events of type `E` ([`RawPayload`] for every type).
pub trait Handler<E>: Send + Sync + 'static {
    /// Handles one event. The bus retries a failure (see the bus's retry settings) and runs the
    /// event's other handlers either way.
    fn handle(&self, event: Arc<Envelope<E>>) -> BoxFuture<HandlerResult>;

    /// The handler's name, for dead letters, logs and spans.
    fn name(&self) -> String {
        bare_type_name::<Self>()
    }
}

impl<E, F, Fut> Handler<E> for F
where
    E: Send + Sync + 'static,
    F: Fn(Arc<Envelope<E>>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    fn handle(&self, event: Arc<Envelope<E>>) -> BoxFuture<HandlerResult> {
        Box::pin(self(event))
    }

    fn name(&self) -> String {
        // A closure's type name says where it was written: `my_app::main::{{closure}}`.
        std::any::type_name::<F>().to_string()
    }
}

/// A handler with a name of its choosing.
pub struct Named<H> {
    name: String,
    handler: H,
}

/// Gives `handler` the name `name`.
pub fn named<H>(name: impl Into<String>, handler: H) -> Named<H> {
    Named {
        name: name.into(),
        handler,
    }
}

impl<E, H: Handler<E>> Handler<E> for Named<H> {
    fn handle(&self, event: Arc<Envelope<E>>) -> BoxFuture<HandlerResult> {
        self.handler.handle(event)
    }

    fn name(&self) -> String {
        self.name.clone()
    }
}

/// Awaits a handler's call; a panic inside it becomes a failure (`Panic` and its message)
/// instead of tearing down the task that runs it, so the bus retries or dead-letters the event
/// like any other failure.
pub(super) async fn catching_panics(call: BoxFuture<HandlerResult>) -> HandlerResult {
    CatchUnwind(call).await
}

struct CatchUnwind(BoxFuture<HandlerResult>);

impl Future for CatchUnwind {
    type Output = HandlerResult;
    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<HandlerResult> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(poll) => poll,
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a handler panicked".into());
                std::task::Poll::Ready(Err(HandlerError::new("Panic", message)))
            }
        }
    }
}

/// A subscriber object: it declares the event types it handles and registers a handler for each
/// ([`EventBus::register`](super::EventBus::register)).
pub trait Subscriber: Send + Sync + 'static {
    /// Registers the subscriber's handlers.
    fn subscribe(self: Arc<Self>, to: &mut Registration<'_>);
}

/// What a [`Subscriber`] registers its handlers with.
pub struct Registration<'a> {
    pub(super) add: &'a mut dyn FnMut(Route),
}

impl Registration<'_> {
    /// Handles events of type `E` with `handler`.
    pub fn on<E: Event>(&mut self, handler: impl Handler<E>) -> &mut Self {
        (self.add)(Route::typed(handler));
        self
    }

    /// Handles every event with `handler`.
    pub fn on_all(&mut self, handler: impl Handler<RawPayload>) -> &mut Self {
        (self.add)(Route::all(handler));
        self
    }
}

/// A handler with its event type erased: what the bus's registry keeps.
pub struct Route {
    /// The event type it handles; `None` for every type.
    pub(super) event_type: Option<&'static str>,
    pub(super) name: Arc<str>,
    pub(super) call: Arc<dyn ErasedHandler>,
}

impl Route {
    /// A route for events of type `E`.
    pub fn typed<E: Event>(handler: impl Handler<E>) -> Route {
        Route {
            event_type: Some(E::EVENT_TYPE),
            name: handler.name().into(),
            call: Arc::new(Typed::<E, _> {
                handler,
                _event: std::marker::PhantomData,
            }),
        }
    }

    /// A route for every event.
    pub fn all(handler: impl Handler<RawPayload>) -> Route {
        Route {
            event_type: None,
            name: handler.name().into(),
            call: Arc::new(Raw(handler)),
        }
    }
}

/// The outcome of reading an event for a handler.
pub(super) enum Prepared {
    /// The handler's call, ready to await.
    Call(BoxFuture<HandlerResult>),
    /// The payload is not the handler's type.
    Undecodable(String),
}

/// A handler called with an event of any type, reading it as its own.
pub(super) trait ErasedHandler: Send + Sync {
    fn prepare(&self, event: &ReadEvent) -> Prepared;
}

struct Typed<E, H> {
    handler: H,
    _event: std::marker::PhantomData<fn() -> E>,
}

impl<E: Event, H: Handler<E>> ErasedHandler for Typed<E, H> {
    fn prepare(&self, event: &ReadEvent) -> Prepared {
        // Read from the record's bytes straight into the handler's type.
        match event.payload::<E>() {
            Ok(typed) => Prepared::Call(self.handler.handle(Arc::new(Envelope {
                meta: event.meta.clone(),
                event: typed,
            }))),
            Err(e) => Prepared::Undecodable(format!("the payload is not a {}: {e}", E::EVENT_TYPE)),
        }
    }
}

struct Raw<H>(H);

impl<H: Handler<RawPayload>> ErasedHandler for Raw<H> {
    fn prepare(&self, event: &ReadEvent) -> Prepared {
        Prepared::Call(self.0.handle(event.raw().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Timeout;
    impl fmt::Display for Timeout {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("no answer in 5 s")
        }
    }
    impl std::error::Error for Timeout {}

    #[test]
    fn errors_are_named_by_their_bare_type() {
        let e = HandlerError::from_error(&Timeout);
        assert_eq!(e.type_name(), "Timeout");
        assert_eq!(e.message(), "no answer in 5 s");
        assert_eq!(bare_type_name::<Vec<Timeout>>(), "Vec");
        assert_eq!(HandlerError::from("boom").type_name(), "HandlerError");
    }
}
