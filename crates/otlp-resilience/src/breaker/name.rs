//! The name of a breaker, cheap to copy into every rejection.

use std::fmt;
use std::sync::Arc;

/// A breaker's name: a `&'static str` (copied for free into every rejection) or an
/// owned string (shared, one reference-count increment per copy).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BreakerName(Repr);

#[derive(Clone, PartialEq, Eq, Hash)]
enum Repr {
    Static(&'static str),
    Shared(Arc<str>),
}

impl BreakerName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Static(s) => s,
            Repr::Shared(s) => s,
        }
    }
}

impl From<&'static str> for BreakerName {
    fn from(name: &'static str) -> Self {
        BreakerName(Repr::Static(name))
    }
}

impl From<String> for BreakerName {
    fn from(name: String) -> Self {
        BreakerName(Repr::Shared(name.into()))
    }
}

impl From<Arc<str>> for BreakerName {
    fn from(name: Arc<str>) -> Self {
        BreakerName(Repr::Shared(name))
    }
}

impl fmt::Display for BreakerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for BreakerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl AsRef<str> for BreakerName {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}
