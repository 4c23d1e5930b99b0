//! Which path serves which signal, and which [`Sink`] takes each signal's data.

use std::fmt;
use std::sync::Arc;

use otlp_core::{Signal, Sink};

/// The sinks a receiver hands payloads to: one per signal, or one for all.
///
/// A signal without a sink is not served: its path answers 404, so a gateway that only
/// collects traces says so instead of accepting metrics it would drop. One shared sink
/// suits a pipeline whose first stage dispatches on [`otlp_core::Payload::signal`]; one
/// per signal suits separate pipelines (each with its own queue, so a full logs queue
/// never refuses traces).
///
/// ```
/// use std::sync::Arc;
/// use otlp_core::sink::{Accepted, BoxFuture, Sink};
/// use otlp_core::{Payload, Refusal, Signal};
/// use otlp_transport_http::receiver::Sinks;
///
/// struct Discard;
/// impl Sink for Discard {
///     fn accept(&self, _: Payload) -> BoxFuture<'_, Result<Accepted, Refusal>> {
///         Box::pin(async { Ok(Accepted::full()) })
///     }
/// }
///
/// let all = Sinks::all(Arc::new(Discard));
/// assert!(all.get(Signal::Logs).is_some());
/// let traces_only = Sinks::none().with(Signal::Traces, Arc::new(Discard));
/// assert!(traces_only.get(Signal::Metrics).is_none());
/// ```
#[derive(Clone, Default)]
pub struct Sinks {
    by_signal: [Option<Arc<dyn Sink>>; 3],
}

impl Sinks {
    /// No sinks yet; add them with [`Sinks::with`].
    pub fn none() -> Sinks {
        Sinks::default()
    }

    /// The same sink for traces, metrics and logs.
    pub fn all(sink: Arc<dyn Sink>) -> Sinks {
        Sinks {
            by_signal: [Some(sink.clone()), Some(sink.clone()), Some(sink)],
        }
    }

    /// `sink` takes `signal`'s data (replacing any sink set before).
    #[must_use]
    pub fn with(mut self, signal: Signal, sink: Arc<dyn Sink>) -> Sinks {
        self.by_signal[signal.index()] = Some(sink);
        self
    }

    /// The sink for `signal`, if it is served.
    pub fn get(&self, signal: Signal) -> Option<&Arc<dyn Sink>> {
        self.by_signal[signal.index()].as_ref()
    }

    /// Whether no signal has a sink.
    pub fn is_empty(&self) -> bool {
        self.by_signal.iter().all(Option::is_none)
    }
}

impl fmt::Debug for Sinks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let served: Vec<Signal> = Signal::ALL
            .into_iter()
            .filter(|s| self.get(*s).is_some())
            .collect();
        f.debug_struct("Sinks").field("served", &served).finish()
    }
}

/// The configured path of each signal.
#[derive(Debug, Clone)]
pub(crate) struct Routes {
    paths: [(Box<str>, Signal); 3],
}

impl Routes {
    pub(crate) fn new(paths: &[String; 3]) -> Routes {
        Routes {
            paths: Signal::ALL.map(|s| (paths[s.index()].as_str().into(), s)),
        }
    }

    /// The path of `signal`.
    pub(crate) fn path(&self, signal: Signal) -> &str {
        &self.paths[signal.index()].0
    }

    /// The signal served at `path`, if any.
    pub(crate) fn signal(&self, path: &str) -> Option<Signal> {
        self.paths
            .iter()
            .find(|(p, _)| &**p == path)
            .map(|(_, s)| *s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_paths_route() {
        let mut paths = Signal::ALL.map(|s| s.http_path().to_owned());
        paths[2] = "/logs".to_owned();
        let routes = Routes::new(&paths);
        assert_eq!(routes.signal("/v1/traces"), Some(Signal::Traces));
        assert_eq!(routes.signal("/logs"), Some(Signal::Logs));
        assert_eq!(routes.signal("/v1/logs"), None);
        assert_eq!(routes.signal("/v1/traces/"), None);
    }
}
