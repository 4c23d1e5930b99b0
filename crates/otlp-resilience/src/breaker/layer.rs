//! The `tower` layer.

use tower::Layer;

use super::{CircuitBreaker, CircuitBreakerService};
use crate::classify::OtlpClassifier;

/// Wraps services in a [`CircuitBreakerService`] sharing one [`CircuitBreaker`]: every
/// service the layer makes (e.g. one per connection) feeds the same window, so put one
/// layer per upstream.
///
/// The classifier decides what a result means; the default, [`OtlpClassifier`], works
/// for services whose error is an [`ExportError`](otlp_core::ExportError), a tower
/// `BoxError` holding one, or another middleware's error wrapping one. Use
/// [`with_classifier`](Self::with_classifier) for other services, e.g. with
/// [`AnyError`](crate::classify::AnyError) or a closure that looks at HTTP statuses.
#[derive(Debug, Clone)]
pub struct CircuitBreakerLayer<C = OtlpClassifier> {
    breaker: CircuitBreaker,
    classifier: C,
}

impl CircuitBreakerLayer {
    /// A layer feeding `breaker`, with the OTLP classification.
    pub fn new(breaker: CircuitBreaker) -> Self {
        CircuitBreakerLayer {
            breaker,
            classifier: OtlpClassifier,
        }
    }
}

impl<C> CircuitBreakerLayer<C> {
    /// The same layer with another classifier.
    pub fn with_classifier<C2>(self, classifier: C2) -> CircuitBreakerLayer<C2> {
        CircuitBreakerLayer {
            breaker: self.breaker,
            classifier,
        }
    }

    /// The breaker the layer's services share.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }
}

impl<S, C: Clone> Layer<S> for CircuitBreakerLayer<C> {
    type Service = CircuitBreakerService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService::new(inner, self.breaker.clone(), self.classifier.clone())
    }
}
