//! A lock-free retry budget: retries may add at most a fraction of extra load.
//!
//! Each first attempt deposits `ratio` tokens, each retry withdraws one; tokens live for
//! a sliding window (default 10 s), and a floor of `min_retries_per_sec` retries is always
//! allowed so a service with little traffic can still retry. This is the scheme of
//! Finagle's `RetryBudget` and tower's `TpsBudget`, with the same defaults (20 %, 10 per
//! second, 10 s).
//!
//! Unlike tower's `TpsBudget` (0.5), which locks a mutex on every deposit and every
//! withdrawal to check whether its window must rotate, every operation here is a handful
//! of atomic loads and one atomic add or compare-and-swap: the window is a ring of slots,
//! and each slot packs its epoch and its count into one `AtomicU64`, so a slot is reset
//! and counted in one atomic step. A deposit costs one clock read (shared with the retry's
//! own start time) and one `fetch_add`.
//!
//! The check and the withdrawal of [`RetryBudget::try_withdraw`] are two atomic steps,
//! as in Finagle and tower: under contention, concurrent retries may overdraw the budget by
//! at most one token each.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Number of slots in the sliding window.
const SLOTS: u64 = 10;
/// Bits of a slot word holding the count; the rest hold the epoch.
const COUNT_BITS: u32 = 40;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
/// Epochs are stored modulo 2^24: a slot untouched for exactly a multiple of 2^24 slot
/// lengths (194 days with the default window) could alias; that at worst lends a few
/// stale tokens.
const EPOCH_MASK: u64 = (1 << (64 - COUNT_BITS)) - 1;
/// Fixed-point scale of tokens: one retry costs `SCALE` units.
const SCALE: u64 = 1000;

/// A retry budget shared by every call to one downstream (wrap it in an `Arc`; the
/// retry policy does).
///
/// ```
/// use std::time::Duration;
/// use otlp_resilience::retry::RetryBudget;
///
/// // 10 % extra load, no floor, over one second.
/// let budget = RetryBudget::new(0.1, 0, Duration::from_secs(1));
/// for _ in 0..20 {
///     budget.deposit(); // 20 first attempts
/// }
/// assert!(budget.try_withdraw()); // 2 retries allowed...
/// assert!(budget.try_withdraw());
/// assert!(!budget.try_withdraw()); // ...and no more
/// ```
pub struct RetryBudget {
    origin: Instant,
    slot_nanos: u64,
    deposit_units: u64,
    reserve_units: u64,
    deposits: [AtomicU64; SLOTS as usize],
    withdrawals: [AtomicU64; SLOTS as usize],
    ratio: f64,
    min_per_sec: u32,
    window: Duration,
}

impl Default for RetryBudget {
    /// 20 % extra load, at least 10 retries a second, over a 10 s window (tower's and
    /// Finagle's defaults).
    fn default() -> Self {
        RetryBudget::new(0.2, 10, Duration::from_secs(10))
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("ratio", &self.ratio)
            .field("min_retries_per_sec", &self.min_per_sec)
            .field("window", &self.window)
            .field("balance", &self.balance())
            .finish()
    }
}

impl RetryBudget {
    /// A budget where retries may add `ratio` (e.g. `0.2` = 20 %) of the first attempts
    /// seen in the last `window`, plus `min_retries_per_sec` retries a second in any case.
    ///
    /// `ratio` is clamped to `[0, 1000]` (NaN is 0); a `window` shorter than 10 ns is
    /// taken as 10 ns.
    pub fn new(ratio: f64, min_retries_per_sec: u32, window: Duration) -> RetryBudget {
        let ratio = if ratio.is_nan() {
            0.0
        } else {
            ratio.clamp(0.0, 1000.0)
        };
        let window_nanos = u64::try_from(window.as_nanos())
            .unwrap_or(u64::MAX)
            .max(SLOTS);
        let slot_nanos = window_nanos / SLOTS;
        // The floor is per second; over the whole window it is `min * window` retries.
        let reserve_units = (f64::from(min_retries_per_sec) * window.as_secs_f64() * SCALE as f64)
            .min(u64::MAX as f64 / 4.0) as u64;
        RetryBudget {
            origin: Instant::now(),
            slot_nanos,
            deposit_units: (ratio * SCALE as f64).round() as u64,
            reserve_units,
            deposits: Default::default(),
            withdrawals: Default::default(),
            ratio,
            min_per_sec: min_retries_per_sec,
            window,
        }
    }

    /// The fraction of extra load retries may add.
    pub fn ratio(&self) -> f64 {
        self.ratio
    }

    /// The floor of retries a second.
    pub fn min_retries_per_sec(&self) -> u32 {
        self.min_per_sec
    }

    /// How long a deposit counts.
    pub fn window(&self) -> Duration {
        self.window
    }

    fn epoch(&self) -> u64 {
        self.epoch_at(Instant::now())
    }

    fn epoch_at(&self, now: Instant) -> u64 {
        let nanos = u64::try_from(now.saturating_duration_since(self.origin).as_nanos())
            .unwrap_or(u64::MAX);
        nanos / self.slot_nanos
    }

    /// Records a first attempt: adds `ratio` tokens.
    pub fn deposit(&self) {
        self.deposit_at(Instant::now());
    }

    /// [`deposit`](Self::deposit) with the time already read (saves a clock read for a
    /// caller that needs the time anyway).
    pub(crate) fn deposit_at(&self, now: Instant) {
        let epoch = self.epoch_at(now);
        bump(&self.deposits[(epoch % SLOTS) as usize], epoch & EPOCH_MASK);
    }

    /// Takes one token for a retry if the budget has one; `false` means do not retry.
    pub fn try_withdraw(&self) -> bool {
        let epoch = self.epoch();
        if self.balance_units(epoch) < SCALE as i128 {
            return false;
        }
        bump(
            &self.withdrawals[(epoch % SLOTS) as usize],
            epoch & EPOCH_MASK,
        );
        true
    }

    /// The number of retries the budget allows right now (may be fractional).
    pub fn balance(&self) -> f64 {
        self.balance_units(self.epoch()) as f64 / SCALE as f64
    }

    fn balance_units(&self, epoch: u64) -> i128 {
        let epoch = epoch & EPOCH_MASK;
        let deposits = live_sum(&self.deposits, epoch);
        let withdrawals = live_sum(&self.withdrawals, epoch);
        i128::from(self.reserve_units) + i128::from(deposits) * i128::from(self.deposit_units)
            - i128::from(withdrawals) * i128::from(SCALE)
    }
}

fn pack(epoch: u64, count: u64) -> u64 {
    (epoch << COUNT_BITS) | (count & COUNT_MASK)
}

fn epoch_of(word: u64) -> u64 {
    word >> COUNT_BITS
}

/// How many epochs `slot_epoch` lies before `current` (modulo the epoch width).
fn age(current: u64, slot_epoch: u64) -> u64 {
    current.wrapping_sub(slot_epoch) & EPOCH_MASK
}

/// Adds one to the slot's count for `epoch`, resetting the slot if it holds an older epoch.
fn bump(slot: &AtomicU64, epoch: u64) {
    let mut word = slot.load(Ordering::Relaxed);
    loop {
        let slot_epoch = epoch_of(word);
        // Same epoch, or a newer one written by a thread whose clock read came later:
        // count there (never wind a slot back, that would erase newer counts).
        if slot_epoch == epoch || age(epoch, slot_epoch) >= EPOCH_MASK / 2 {
            if word & COUNT_MASK != COUNT_MASK {
                slot.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        match slot.compare_exchange_weak(word, pack(epoch, 1), Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => return,
            Err(actual) => word = actual,
        }
    }
}

/// The sum of the counts of the slots whose epoch is within the window ending at `epoch`.
fn live_sum(slots: &[AtomicU64; SLOTS as usize], epoch: u64) -> u64 {
    slots
        .iter()
        .map(|slot| slot.load(Ordering::Relaxed))
        .filter(|word| *word != 0 && age(epoch, epoch_of(*word)) < SLOTS)
        .map(|word| word & COUNT_MASK)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn ratio_limits_retries() {
        let budget = RetryBudget::new(0.25, 0, Duration::from_secs(10));
        assert!(!budget.try_withdraw(), "no traffic, no floor: no retry");
        for _ in 0..100 {
            budget.deposit();
        }
        let allowed = (0..100).filter(|_| budget.try_withdraw()).count();
        assert_eq!(allowed, 25);
        assert!(budget.balance() < 1.0);
    }

    #[tokio::test(start_paused = true)]
    async fn floor_allows_retries_without_traffic() {
        let budget = RetryBudget::new(0.0, 3, Duration::from_secs(2));
        // 3 a second over a 2 s window.
        let allowed = (0..100).filter(|_| budget.try_withdraw()).count();
        assert_eq!(allowed, 6);
    }

    #[tokio::test(start_paused = true)]
    async fn deposits_expire_after_the_window() {
        let budget = RetryBudget::new(1.0, 0, Duration::from_secs(1));
        for _ in 0..5 {
            budget.deposit();
        }
        assert_eq!(budget.balance(), 5.0);
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(budget.balance(), 5.0, "still inside the window");
        tokio::time::advance(Duration::from_millis(600)).await;
        assert_eq!(budget.balance(), 0.0, "expired");
        assert!(!budget.try_withdraw());
    }

    #[tokio::test(start_paused = true)]
    async fn withdrawals_expire_too_so_the_budget_refills() {
        let budget = RetryBudget::new(0.5, 1, Duration::from_secs(1));
        for _ in 0..4 {
            budget.deposit();
        }
        // 1 (floor) + 2 (ratio).
        let allowed = (0..10).filter(|_| budget.try_withdraw()).count();
        assert_eq!(allowed, 3);
        tokio::time::advance(Duration::from_millis(1100)).await;
        // Everything expired: the floor is back.
        assert!(budget.try_withdraw());
        assert!(!budget.try_withdraw());
    }

    #[tokio::test(start_paused = true)]
    async fn window_slides_slot_by_slot() {
        let budget = RetryBudget::new(1.0, 0, Duration::from_secs(1));
        budget.deposit();
        tokio::time::advance(Duration::from_millis(550)).await;
        budget.deposit();
        budget.deposit();
        assert_eq!(budget.balance(), 3.0);
        tokio::time::advance(Duration::from_millis(500)).await; // t = 1.05 s
        assert_eq!(
            budget.balance(),
            2.0,
            "the first deposit has left the window"
        );
        tokio::time::advance(Duration::from_millis(500)).await; // t = 1.55 s
        assert_eq!(budget.balance(), 0.0);
    }

    #[tokio::test(start_paused = true)]
    async fn slots_are_reused_after_a_long_idle() {
        let budget = RetryBudget::new(1.0, 0, Duration::from_secs(1));
        budget.deposit();
        // Exactly a whole number of windows later the same slot index is current again:
        // the old count must not leak into the new epoch.
        tokio::time::advance(Duration::from_secs(7)).await;
        assert_eq!(budget.balance(), 0.0);
        budget.deposit();
        assert_eq!(budget.balance(), 1.0);
    }

    #[test]
    fn odd_parameters() {
        let b = RetryBudget::new(f64::NAN, 0, Duration::ZERO);
        assert_eq!(b.ratio(), 0.0);
        b.deposit();
        assert!(!b.try_withdraw());
        let b = RetryBudget::new(-1.0, 0, Duration::from_secs(1));
        assert_eq!(b.ratio(), 0.0);
        let b = RetryBudget::new(1e9, u32::MAX, Duration::MAX);
        assert_eq!(b.ratio(), 1000.0);
        assert!(b.try_withdraw());
        assert!(format!("{b:?}").contains("ratio"));
    }

    #[test]
    fn stale_slot_is_not_wound_back() {
        let slot = AtomicU64::new(pack(10, 4));
        bump(&slot, 9); // a late clock read: counted into the newer epoch
        assert_eq!(slot.load(Ordering::Relaxed), pack(10, 5));
        bump(&slot, 11); // a newer epoch resets the slot
        assert_eq!(slot.load(Ordering::Relaxed), pack(11, 1));
        // Wrap-around of the epoch counter.
        let slot = AtomicU64::new(pack(EPOCH_MASK, 2));
        bump(&slot, 0);
        assert_eq!(slot.load(Ordering::Relaxed), pack(0, 1));
    }

    #[test]
    fn concurrent_use_stays_within_one_token_per_thread() {
        let budget = Arc::new(RetryBudget::new(0.1, 0, Duration::from_secs(3600)));
        for _ in 0..1000 {
            budget.deposit();
        }
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let budget = Arc::clone(&budget);
                std::thread::spawn(move || (0..1000).filter(|_| budget.try_withdraw()).count())
            })
            .collect();
        let total: usize = threads
            .into_iter()
            .map(|t| t.join().unwrap_or_default())
            .sum();
        assert!((100..=104).contains(&total), "{total}");
    }
}
