//! The pipeline: receive -> protect -> degrade -> queue -> batch -> export.
//!
//! [`Pipeline::build`] turns a [`GatewayConfig`](crate::config::GatewayConfig) into the [`Ingress`](ingress::Ingress) sinks the receivers
//! feed and the [`Route`](route::Route)s (queue + exporters + workers) that drain them;
//! [`Pipeline::start`] starts the workers, the degradation controller and the memory
//! monitor; [`Pipeline::reload`] applies a new configuration's limits, policy and exporter
//! settings in place; [`Pipeline::shutdown`] drains.

mod assemble;
pub mod exporters;
pub mod file_sink;
pub mod ingress;
pub mod queue;
pub mod route;
pub mod tenant_limit;

pub use assemble::*;
