//! The retry state machine: attempt -> (sleep -> attempt)* -> done.
//!
//! One core ([`RetryCore`]) serves both the tower service ([`ResponseFuture`]) and the
//! plain async API ([`RunFuture`]); each of them only says how to get ready and how to
//! start the next attempt. No allocation: the in-flight attempt and a single reusable
//! `Sleep` (per-attempt deadline, then backoff) live inside the future.
//!
//! Dropping the future drops the attempt in flight and the sleep: no further attempt
//! starts, and a cancelled call counts as nothing.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower::Service;

use super::error::RetryError;
use super::policy::PolicyInner;
use crate::classify::{RetryClassify, RetryDecision};

pin_project! {
    #[project = StateProj]
    enum State<F> {
        // Waiting for the attempt source to be ready, then starting an attempt.
        Ready,
        // An attempt is in flight (with a deadline in `sleep` when `timed` is set).
        Running { #[pin] attempt: F, timed: bool },
        // Backing off before the next attempt (the deadline is in `sleep`).
        Waiting,
        // Finished: polling again is a bug of the caller; it gets `Pending`.
        Done,
    }
}

pin_project! {
    /// The state machine shared by [`ResponseFuture`] and [`RunFuture`].
    pub(crate) struct RetryCore<F, E, C> {
        policy: Arc<PolicyInner<C>>,
        #[pin]
        state: State<F>,
        #[pin]
        sleep: Option<Sleep>,
        // When the first attempt started (set when it starts).
        started: Option<Instant>,
        attempts: u32,
        rng: Option<fastrand::Rng>,
        last: Option<E>,
    }
}

impl<F, E, C> RetryCore<F, E, C> {
    /// A core whose first attempt still has to be started (plain API).
    fn idle(policy: Arc<PolicyInner<C>>) -> Self {
        RetryCore {
            policy,
            state: State::Ready,
            sleep: None,
            started: None,
            attempts: 0,
            rng: None,
            last: None,
        }
    }

    /// A core whose first attempt is already running (service: `call` started it on the
    /// service it was handed ready).
    fn running(policy: Arc<PolicyInner<C>>, attempt: F) -> Self {
        // The one clock read of a call that succeeds at once (shared with the budget).
        let started = Instant::now();
        policy.on_first_attempt(started);
        let timeout = policy.attempt_timeout;
        RetryCore {
            sleep: timeout.map(|t| tokio::time::sleep_until(started + t)),
            policy,
            state: State::Running {
                attempt,
                timed: timeout.is_some(),
            },
            started: Some(started),
            attempts: 1,
            rng: None,
            last: None,
        }
    }
}

/// Arms the reusable sleep for `deadline`.
fn arm(mut sleep: Pin<&mut Option<Sleep>>, deadline: Instant) {
    match sleep.as_mut().as_pin_mut() {
        Some(s) => s.reset(deadline),
        None => sleep.set(Some(tokio::time::sleep_until(deadline))),
    }
}

impl<F, T, E, C> RetryCore<F, E, C>
where
    F: Future<Output = Result<T, E>>,
    C: RetryClassify<E>,
{
    /// Drives the retry. `ready` polls the attempt `source`'s readiness, `start` starts
    /// an attempt.
    fn poll_with<A>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        source: &mut A,
        ready: impl Fn(&mut A, &mut Context<'_>) -> Poll<Result<(), E>>,
        start: impl Fn(&mut A) -> F,
    ) -> Poll<Result<T, RetryError<E>>> {
        let mut this = self.project();
        loop {
            // `Some(e)`: the attempt failed with `e`; `None`: it timed out.
            let failure: Option<E>;
            match this.state.as_mut().project() {
                StateProj::Ready => {
                    if let Err(e) = ready!(ready(source, cx)) {
                        // A source that cannot get ready counts as a failed attempt.
                        *this.attempts += 1;
                        failure = Some(e);
                    } else {
                        let first = *this.attempts == 0;
                        if first {
                            let now = Instant::now();
                            *this.started = Some(now);
                            this.policy.on_first_attempt(now);
                        } else {
                            this.policy.metrics.attempt(false);
                        }
                        *this.attempts += 1;
                        let timed = match this.policy.attempt_timeout {
                            Some(t) => {
                                arm(this.sleep.as_mut(), Instant::now() + t);
                                true
                            }
                            None => false,
                        };
                        this.state.set(State::Running {
                            attempt: start(source),
                            timed,
                        });
                        continue;
                    }
                }
                StateProj::Running { attempt, timed } => match attempt.poll(cx) {
                    Poll::Ready(Ok(response)) => {
                        this.state.set(State::Done);
                        return Poll::Ready(Ok(response));
                    }
                    Poll::Ready(Err(e)) => failure = Some(e),
                    Poll::Pending => {
                        let timed_out = *timed
                            && match this.sleep.as_mut().as_pin_mut() {
                                Some(sleep) => sleep.poll(cx).is_ready(),
                                None => false,
                            };
                        if !timed_out {
                            return Poll::Pending;
                        }
                        tracing::debug!(
                            retry.name = %this.policy.name,
                            attempt = *this.attempts,
                            "attempt timed out"
                        );
                        failure = None;
                    }
                },
                StateProj::Waiting => {
                    if let Some(sleep) = this.sleep.as_mut().as_pin_mut() {
                        ready!(sleep.poll(cx));
                    }
                    this.state.set(State::Ready);
                    continue;
                }
                StateProj::Done => return Poll::Pending,
            }

            // The attempt failed (or timed out): retry or give up.
            let policy = &**this.policy;
            // Only a source that failed to get ready before its first attempt has no start.
            let started = *this.started.get_or_insert_with(Instant::now);
            let decision = match &failure {
                Some(e) => policy.classifier.retry_decision(e),
                None => RetryDecision::Retry { after: None },
            };
            let rng = this.rng.get_or_insert_with(|| policy.rng());
            match policy.next_delay(decision, *this.attempts, started, rng) {
                Ok(delay) => {
                    tracing::debug!(
                        retry.name = %policy.name,
                        attempt = *this.attempts,
                        ?delay,
                        "retrying"
                    );
                    if failure.is_some() {
                        *this.last = failure;
                    }
                    if delay.is_zero() {
                        this.state.set(State::Ready);
                    } else {
                        arm(this.sleep.as_mut(), Instant::now() + delay);
                        this.state.set(State::Waiting);
                    }
                }
                Err(why) => {
                    let error =
                        policy.give_up(why, *this.attempts, started, failure, this.last.take());
                    this.state.set(State::Done);
                    return Poll::Ready(Err(error));
                }
            }
        }
    }
}

pin_project! {
    /// The future of a [`Retry`](super::Retry) service call.
    pub struct ResponseFuture<S, Req, C>
    where
        S: Service<Req>,
    {
        #[pin]
        core: RetryCore<S::Future, S::Error, C>,
        service: S,
        request: Req,
    }
}

impl<S, Req, C> ResponseFuture<S, Req, C>
where
    S: Service<Req>,
{
    pub(crate) fn new(
        policy: Arc<PolicyInner<C>>,
        first_attempt: S::Future,
        service: S,
        request: Req,
    ) -> Self {
        ResponseFuture {
            core: RetryCore::running(policy, first_attempt),
            service,
            request,
        }
    }
}

impl<S, Req, C> Future for ResponseFuture<S, Req, C>
where
    S: Service<Req>,
    Req: Clone,
    C: RetryClassify<S::Error>,
{
    type Output = Result<S::Response, RetryError<S::Error>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let request = &*this.request;
        this.core.poll_with(
            cx,
            this.service,
            |service, cx| service.poll_ready(cx),
            |service| service.call(request.clone()),
        )
    }
}

impl<S, Req, C> fmt::Debug for ResponseFuture<S, Req, C>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("attempts", &self.core.attempts)
            .finish_non_exhaustive()
    }
}

pin_project! {
    /// The future of [`RetryPolicy::run`](super::RetryPolicy::run).
    pub struct RunFuture<M, F, E, C> {
        #[pin]
        core: RetryCore<F, E, C>,
        make_attempt: M,
    }
}

impl<M, F, E, C> RunFuture<M, F, E, C> {
    pub(crate) fn new(policy: Arc<PolicyInner<C>>, make_attempt: M) -> Self {
        RunFuture {
            core: RetryCore::idle(policy),
            make_attempt,
        }
    }
}

impl<M, F, T, E, C> Future for RunFuture<M, F, E, C>
where
    M: FnMut() -> F,
    F: Future<Output = Result<T, E>>,
    C: RetryClassify<E>,
{
    type Output = Result<T, RetryError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        this.core.poll_with(
            cx,
            this.make_attempt,
            |_, _| Poll::Ready(Ok(())),
            |make_attempt| make_attempt(),
        )
    }
}

impl<M, F, E, C> fmt::Debug for RunFuture<M, F, E, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunFuture")
            .field("attempts", &self.core.attempts)
            .finish_non_exhaustive()
    }
}
