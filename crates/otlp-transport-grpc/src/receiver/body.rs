//! The request body as tonic reads it: counted, and cut off at the message read deadline.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// The error type of boxed bodies.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

pin_project_lite::pin_project! {
    /// Wraps a request body: adds the length of every data frame to `received`, and
    /// fails with `DEADLINE_EXCEEDED` once the deadline passes while the body is still
    /// being read. tonic turns the failure into the call's status (it finds a
    /// `tonic::Status` among body errors), so a client that trickles its message in gets
    /// an answer instead of holding a call slot forever.
    pub(crate) struct MeteredBody<B> {
        #[pin]
        inner: B,
        #[pin]
        deadline: Sleep,
        timeout: Duration,
        received: Arc<AtomicU64>,
    }
}

impl<B> MeteredBody<B> {
    pub(crate) fn new(
        inner: B,
        started: Instant,
        timeout: Duration,
        received: Arc<AtomicU64>,
    ) -> Self {
        MeteredBody {
            inner,
            deadline: tokio::time::sleep_until(started + timeout),
            timeout,
            received,
        }
    }
}

impl<B> Body for MeteredBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received
                        .fetch_add(data.len() as u64, Ordering::Relaxed);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.deadline.poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(
                    tonic::Status::deadline_exceeded(format!(
                        "the request message did not arrive within {:?} (message_read_timeout)",
                        this.timeout
                    )),
                )))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};

    /// A body that never yields a frame.
    struct Stalled;

    impl Body for Stalled {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            Poll::Pending
        }
    }

    #[tokio::test(start_paused = true)]
    async fn counts_and_times_out() {
        let received = Arc::new(AtomicU64::new(0));
        let body = MeteredBody::new(
            Full::new(Bytes::from_static(b"hello")),
            Instant::now(),
            Duration::from_secs(1),
            received.clone(),
        );
        assert_eq!(body.collect().await.unwrap().to_bytes(), "hello");
        assert_eq!(received.load(Ordering::Relaxed), 5);

        let started = Instant::now();
        let body = MeteredBody::new(Stalled, started, Duration::from_secs(1), received);
        let err = body.collect().await.unwrap_err();
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        let status = err.downcast::<tonic::Status>().unwrap();
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
    }
}
