//! Sliding windows of call outcomes: a ring of buckets of atomic counters.
//!
//! Writing is one `fetch_add` on the current bucket's call counter (plus one each for a
//! failure or a slow call) and one load of the ring's head: no lock, no CAS on the
//! common path. Reading sums the ring: a fixed number of loads (at most
//! [`MAX_BUCKETS`] + 1), independent of how many calls the window holds. The breaker
//! reads only when a failure or a slow call is recorded (a success cannot raise a rate),
//! so the success path never pays for the read; keeping running totals instead would
//! double the atomic writes of every call.
//!
//! Precision: the window advances a whole bucket at a time, so a count window of `N`
//! calls in `B` buckets holds between `N` and `N + N/B` of the latest calls, and a time
//! window of `D` in `B` buckets holds between `D - D/B` and `D` of history. A call
//! recorded by a thread that raced with the bucket's recycling can land in the adjacent
//! bucket or, rarely, be dropped from the window (never from the call metrics).

use super::sync::{AtomicCell, CachePadded, Ordering};

/// The most buckets a window may have.
pub(crate) const MAX_BUCKETS: u16 = 1024;

struct Bucket<A> {
    calls: A,
    failures: A,
    slow: A,
}

impl<A: AtomicCell> Bucket<A> {
    fn new() -> Self {
        Bucket {
            calls: A::new(0),
            failures: A::new(0),
            slow: A::new(0),
        }
    }

    /// Adds `calls` calls, one of them failed and/or slow if so; returns the calls
    /// the bucket held before.
    #[inline]
    fn add(&self, calls: u64, failure: bool, slow: bool) -> u64 {
        // Failures and slow calls first, then the call: a concurrent reader then never
        // sees more calls than it will see failures for (rates are clamped anyway).
        if failure {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        if slow {
            self.slow.fetch_add(1, Ordering::Relaxed);
        }
        self.calls.fetch_add(calls, Ordering::Relaxed)
    }

    fn clear(&self) {
        self.calls.store(0, Ordering::Relaxed);
        self.failures.store(0, Ordering::Relaxed);
        self.slow.store(0, Ordering::Relaxed);
    }

    fn add_to(&self, sums: &mut Sums) {
        sums.calls += self.calls.load(Ordering::Relaxed);
        sums.failures += self.failures.load(Ordering::Relaxed);
        sums.slow += self.slow.load(Ordering::Relaxed);
    }
}

/// Totals over the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Sums {
    pub(crate) calls: u64,
    pub(crate) failures: u64,
    pub(crate) slow: u64,
}

impl Sums {
    /// Failure rate in percent (0 with no calls).
    pub(crate) fn failure_rate(&self) -> f64 {
        rate(self.failures, self.calls)
    }

    /// Slow-call rate in percent (0 with no calls).
    pub(crate) fn slow_rate(&self) -> f64 {
        rate(self.slow, self.calls)
    }
}

fn rate(part: u64, calls: u64) -> f64 {
    if calls == 0 {
        0.0
    } else {
        (part.min(calls) as f64 * 100.0) / calls as f64
    }
}

/// The last `N` calls, in buckets of `per_bucket` calls.
pub(crate) struct CountWindow<A> {
    /// Index of the current bucket.
    cursor: CachePadded<A>,
    per_bucket: u64,
    buckets: Box<[Bucket<A>]>,
}

impl<A: AtomicCell> CountWindow<A> {
    /// A window of at least `calls` calls in about `buckets` buckets.
    pub(crate) fn new(calls: u32, buckets: u16) -> Self {
        let calls = u64::from(calls.max(1));
        let buckets = u64::from(buckets.max(1)).min(calls);
        let per_bucket = calls.div_ceil(buckets);
        let full = calls.div_ceil(per_bucket);
        // One more slot than full buckets: the current, filling bucket.
        let slots = (full + 1) as usize;
        CountWindow {
            cursor: CachePadded(A::new(0)),
            per_bucket,
            buckets: (0..slots).map(|_| Bucket::new()).collect(),
        }
    }

    /// Calls per bucket.
    pub(crate) fn per_bucket(&self) -> u64 {
        self.per_bucket
    }

    #[inline]
    fn slot(&self, index: u64) -> &Bucket<A> {
        &self.buckets[index as usize]
    }

    /// Records `calls` calls, of which one failed and/or was slow if so.
    #[inline]
    pub(crate) fn record(&self, calls: u64, failure: bool, slow: bool) {
        let cursor = self.cursor.load(Ordering::Acquire);
        let before = self.slot(cursor).add(calls, failure, slow);
        if before < self.per_bucket && before + calls >= self.per_bucket {
            // Exactly one caller fills the bucket: it clears the next one (the oldest)
            // and moves the cursor. Callers still holding the old cursor keep adding to
            // the full bucket, which stays in the window.
            let next = if cursor + 1 == self.buckets.len() as u64 {
                0
            } else {
                cursor + 1
            };
            self.slot(next).clear();
            self.cursor.store(next, Ordering::Release);
        }
    }

    pub(crate) fn sums(&self) -> Sums {
        let mut sums = Sums::default();
        for bucket in self.buckets.iter() {
            bucket.add_to(&mut sums);
        }
        sums
    }

    pub(crate) fn clear(&self) {
        for bucket in self.buckets.iter() {
            bucket.clear();
        }
    }
}

/// The calls of the last `duration`, in buckets of `bucket_nanos`.
pub(crate) struct TimeWindow<A> {
    /// The newest bucket epoch (`now / bucket_nanos`) seen by a writer.
    head: CachePadded<A>,
    bucket_nanos: u64,
    /// How many epochs the window covers.
    len: u64,
    /// A ring of a power of two >= `len` slots; epoch `e` lives in slot `e & mask`.
    buckets: Box<[Bucket<A>]>,
    mask: u64,
}

impl<A: AtomicCell> TimeWindow<A> {
    pub(crate) fn new(bucket_nanos: u64, buckets: u16) -> Self {
        let len = u64::from(buckets.max(1));
        let slots = len.next_power_of_two();
        TimeWindow {
            head: CachePadded(A::new(0)),
            bucket_nanos: bucket_nanos.max(1),
            len,
            buckets: (0..slots).map(|_| Bucket::new()).collect(),
            mask: slots - 1,
        }
    }

    fn len(&self) -> u64 {
        self.len
    }

    #[inline]
    fn slot(&self, epoch: u64) -> &Bucket<A> {
        &self.buckets[(epoch & self.mask) as usize]
    }

    #[inline]
    pub(crate) fn record(&self, failure: bool, slow: bool, now_nanos: u64) {
        let epoch = now_nanos / self.bucket_nanos;
        let mut head = self.head.load(Ordering::Acquire);
        while epoch > head {
            match self
                .head
                .compare_exchange(head, epoch, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    // We own the epochs (head, epoch]: recycle their slots (at most all).
                    let first = (head + 1).max(epoch.saturating_sub(self.mask));
                    for e in first..=epoch {
                        self.slot(e).clear();
                    }
                    head = epoch;
                }
                Err(actual) => head = actual,
            }
        }
        if head - epoch >= self.len() {
            // Older than the whole window (a very late writer): nothing to count it in.
            return;
        }
        self.slot(epoch).add(1, failure, slow);
    }

    pub(crate) fn sums(&self, now_nanos: u64) -> Sums {
        let epoch = now_nanos / self.bucket_nanos;
        let head = self.head.load(Ordering::Acquire);
        let mut sums = Sums::default();
        let newest = epoch.max(head);
        let oldest = newest.saturating_sub(self.len() - 1);
        if head < oldest {
            return sums;
        }
        for e in oldest..=head {
            self.slot(e).add_to(&mut sums);
        }
        sums
    }

    pub(crate) fn clear(&self) {
        for bucket in self.buckets.iter() {
            bucket.clear();
        }
    }
}

/// Either kind of window.
pub(crate) enum Window<A> {
    Count(CountWindow<A>),
    Time(TimeWindow<A>),
}

impl<A: AtomicCell> Window<A> {
    #[inline]
    pub(crate) fn record(&self, failure: bool, slow: bool, now_nanos: u64) {
        match self {
            Window::Count(w) => w.record(1, failure, slow),
            Window::Time(w) => w.record(failure, slow, now_nanos),
        }
    }

    pub(crate) fn sums(&self, now_nanos: u64) -> Sums {
        match self {
            Window::Count(w) => w.sums(),
            Window::Time(w) => w.sums(now_nanos),
        }
    }

    pub(crate) fn clear(&self) {
        match self {
            Window::Count(w) => w.clear(),
            Window::Time(w) => w.clear(),
        }
    }

    /// Whether recording needs the current time.
    #[inline]
    pub(crate) fn is_time_based(&self) -> bool {
        matches!(self, Window::Time(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    type CountWindow = super::CountWindow<AtomicU64>;
    type TimeWindow = super::TimeWindow<AtomicU64>;

    #[test]
    fn count_window_keeps_between_n_and_n_plus_a_bucket() {
        let w = CountWindow::new(10, 5); // 5 buckets of 2, plus the filling one
        for _ in 0..10 {
            w.record(1, true, false);
        }
        assert_eq!(w.sums().calls, 10);
        w.record(1, false, false);
        assert_eq!(
            w.sums(),
            Sums {
                calls: 11,
                failures: 10,
                slow: 0
            }
        );
        w.record(1, false, true);
        // The oldest bucket (2 failures) made room for the next one.
        assert_eq!(
            w.sums(),
            Sums {
                calls: 10,
                failures: 8,
                slow: 1
            }
        );
        for _ in 0..10 {
            w.record(1, false, false);
        }
        assert_eq!(
            w.sums(),
            Sums {
                calls: 10,
                failures: 0,
                slow: 0
            }
        );
        w.clear();
        assert_eq!(w.sums(), Sums::default());
    }

    #[test]
    fn count_window_with_more_buckets_than_calls() {
        let w = CountWindow::new(3, 10);
        for _ in 0..100 {
            w.record(1, true, false);
        }
        let s = w.sums();
        assert!((3..=4).contains(&s.calls), "{s:?}");
        assert_eq!(s.failures, s.calls);
    }

    #[test]
    fn time_window_forgets_old_buckets() {
        let w = TimeWindow::new(100, 10); // 1000 ns in 10 buckets
        w.record(true, false, 0);
        w.record(false, false, 50);
        w.record(true, true, 950);
        assert_eq!(
            w.sums(950),
            Sums {
                calls: 3,
                failures: 2,
                slow: 1
            }
        );
        // At 1000 the first bucket (epoch 0) is out of the window.
        assert_eq!(
            w.sums(1000),
            Sums {
                calls: 1,
                failures: 1,
                slow: 1
            }
        );
        assert_eq!(w.sums(1999), Sums::default());
        // A writer far in the future recycles everything.
        w.record(false, false, 10_000);
        assert_eq!(
            w.sums(10_000),
            Sums {
                calls: 1,
                failures: 0,
                slow: 0
            }
        );
        // A very late writer (older than the window) is not counted.
        w.record(true, false, 5_000);
        assert_eq!(
            w.sums(10_000),
            Sums {
                calls: 1,
                failures: 0,
                slow: 0
            }
        );
        // A late writer inside the window is.
        w.record(true, false, 9_950);
        assert_eq!(
            w.sums(10_000),
            Sums {
                calls: 2,
                failures: 1,
                slow: 0
            }
        );
    }

    #[test]
    fn time_window_after_a_gap_shorter_than_the_window() {
        let w = TimeWindow::new(10, 4);
        w.record(true, false, 5); // epoch 0
        w.record(true, false, 15); // epoch 1
        w.record(false, false, 45); // epoch 4: epoch 0 recycled
        assert_eq!(
            w.sums(45),
            Sums {
                calls: 2,
                failures: 1,
                slow: 0
            }
        );
        assert_eq!(
            w.sums(65),
            Sums {
                calls: 1,
                failures: 0,
                slow: 0
            }
        );
    }

    #[test]
    fn rates_are_percentages_and_clamped() {
        let s = Sums {
            calls: 4,
            failures: 1,
            slow: 9,
        };
        assert_eq!(s.failure_rate(), 25.0);
        assert_eq!(s.slow_rate(), 100.0);
        assert_eq!(Sums::default().failure_rate(), 0.0);
    }
}
