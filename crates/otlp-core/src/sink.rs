//! The [`Sink`] trait: how a pipeline stage hands a unit of work to the next.
//!
//! A sink either accepts a [`Payload`] (possibly reporting a partial success) or refuses
//! it with a [`Refusal`] that says why and, for backpressure, when to retry. Receivers map
//! the answer onto the wire: 200 / OK with partial success, 400 / INVALID_ARGUMENT for bad
//! data, 429 or 503 / UNAVAILABLE with a retry delay when the pipeline cannot take more.
//! A sink must never accept data it then drops silently.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::error::Refusal;
use crate::payload::Payload;
use crate::request::PartialSuccess;

/// A boxed, `Send` future: keeps [`Sink`] and [`crate::Exporter`] object-safe, so a
/// pipeline can hold `Arc<dyn Sink>`. One allocation per call is noise next to decoding.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The positive answer to a payload: everything accepted, or accepted with some items
/// rejected ([`PartialSuccess`], which the client must not retry).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accepted {
    /// Items rejected although the request as a whole was accepted.
    pub partial_success: Option<PartialSuccess>,
}

impl Accepted {
    /// Everything was accepted.
    pub fn full() -> Accepted {
        Accepted::default()
    }

    /// Accepted, with `rejected` items refused for `message`.
    pub fn partial(rejected: u64, message: impl Into<String>) -> Accepted {
        Accepted {
            partial_success: Some(PartialSuccess {
                rejected,
                message: message.into(),
            }),
        }
    }
}

/// Something that takes units of work: the next pipeline stage, a queue, a file.
///
/// ```
/// use std::sync::Mutex;
/// use otlp_core::sink::{Accepted, BoxFuture, Sink};
/// use otlp_core::{Payload, Refusal};
///
/// /// Keeps payloads in memory up to a fixed count, refusing (retryably) beyond it.
/// struct Bounded { max: usize, held: Mutex<Vec<Payload>> }
///
/// impl Sink for Bounded {
///     fn accept(&self, payload: Payload) -> BoxFuture<'_, Result<Accepted, Refusal>> {
///         Box::pin(async move {
///             let mut held = self.held.lock().unwrap();
///             if held.len() >= self.max {
///                 return Err(Refusal::Unavailable {
///                     reason: "buffer full".into(),
///                     retry_after: std::time::Duration::from_secs(1),
///                 });
///             }
///             held.push(payload);
///             Ok(Accepted::full())
///         })
///     }
/// }
/// ```
pub trait Sink: Send + Sync {
    /// Take `payload`, or refuse it. When this returns `Ok`, the sink owns the data: it
    /// must deliver or durably store it, or count it as dropped by policy.
    fn accept(&self, payload: Payload) -> BoxFuture<'_, Result<Accepted, Refusal>>;
}

impl<S: Sink + ?Sized> Sink for Arc<S> {
    fn accept(&self, payload: Payload) -> BoxFuture<'_, Result<Accepted, Refusal>> {
        (**self).accept(payload)
    }
}

impl<S: Sink + ?Sized> Sink for Box<S> {
    fn accept(&self, payload: Payload) -> BoxFuture<'_, Result<Accepted, Refusal>> {
        (**self).accept(payload)
    }
}
