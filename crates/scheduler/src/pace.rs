//! How many queued async events run at once.
//!
//! Async events are background work: their caller already has its 202. Running as many at
//! once as the concurrency limits allow would let a backlog take every CPU of a small host
//! (64 cold starts of one function on two cores) and starve what callers wait for — sync
//! invokes and the acceptance of new events. So the dispatcher runs a *window* of events that
//! widens while the host has idle CPU and narrows while it is saturated: CPU-bound backlogs
//! take the spare capacity, and I/O-bound ones (functions that mostly wait) still widen to the
//! configured maximum. Lambda, too, slows its queue reading when the backlog grows.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Above this share of busy CPU the window narrows.
const SATURATED: f64 = 0.95;
/// Below this share of busy CPU a full window widens.
const SPARE: f64 = 0.80;
/// Shortest time between two adjustments: long enough for a CPU sample to mean something.
const SAMPLE_PERIOD: Duration = Duration::from_millis(50);

/// Reads how busy the host's CPUs were since the previous reading.
pub(crate) trait CpuMeter: Send {
    /// The share of CPU time (0.0–1.0) spent busy since the last call; `None` when the host
    /// does not say.
    fn busy_since_last(&mut self) -> Option<f64>;
}

/// The host-wide counters of `/proc/stat`.
#[derive(Debug)]
pub(crate) struct ProcStat {
    last: Option<(u64, u64)>,
}

impl ProcStat {
    /// Starts from the counters as they are now.
    pub(crate) fn new() -> Self {
        Self { last: Self::read() }
    }

    /// `(busy, total)` jiffies of all CPUs.
    fn read() -> Option<(u64, u64)> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        parse_cpu_line(stat.lines().next()?)
    }
}

/// `cpu  user nice system idle iowait irq softirq steal …` → `(busy, total)`; idle and iowait
/// are not busy.
fn parse_cpu_line(line: &str) -> Option<(u64, u64)> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let values: Vec<u64> = fields
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    if values.len() < 5 {
        return None;
    }
    let total: u64 = values.iter().sum();
    let idle = values[3] + values[4];
    Some((total.saturating_sub(idle), total))
}

impl CpuMeter for ProcStat {
    fn busy_since_last(&mut self) -> Option<f64> {
        let now = Self::read()?;
        let previous = self.last.replace(now)?;
        let total = now.1.saturating_sub(previous.1);
        // No tick has passed: nothing was busy that the counters could show.
        Some(match total {
            0 => 0.0,
            _ => now.0.saturating_sub(previous.0) as f64 / total as f64,
        })
    }
}

/// The window of async events allowed to run at once.
pub(crate) struct Pace {
    window: AtomicUsize,
    min: usize,
    max: usize,
    meter: Mutex<(Box<dyn CpuMeter>, Instant)>,
}

impl Pace {
    /// A window between `min` and `max` (inclusive), starting at `min`.
    pub(crate) fn new(min: usize, max: usize, meter: Box<dyn CpuMeter>) -> Self {
        let max = max.max(1);
        let min = min.clamp(1, max);
        Self {
            window: AtomicUsize::new(min),
            min,
            max,
            meter: Mutex::new((meter, Instant::now())),
        }
    }

    /// How many events may run at once now.
    pub(crate) fn window(&self) -> usize {
        self.window.load(Ordering::Acquire)
    }

    /// Look at the CPU (at most every [`SAMPLE_PERIOD`]) and move the window: wider when it
    /// is full (`in_flight` at the window) and CPU is spare, narrower when CPU is saturated.
    /// Where the host does not report its CPU, the window is the maximum.
    /// Called from the dispatch loop, which is single; `try_lock` only guards against misuse.
    pub(crate) fn adjust(&self, in_flight: usize) {
        let Ok(mut meter) = self.meter.try_lock() else {
            return;
        };
        if meter.1.elapsed() < SAMPLE_PERIOD {
            return;
        }
        meter.1 = Instant::now();
        let busy = meter.0.busy_since_last();
        let window = self.window();
        let next = match busy {
            None => self.max,
            Some(busy) if busy > SATURATED => window - (window / 4).max(1),
            Some(busy) if busy < SPARE && in_flight >= window => window + (window / 2).max(1),
            Some(_) => window,
        };
        self.window
            .store(next.clamp(self.min, self.max), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    struct Script(VecDeque<Option<f64>>);

    impl CpuMeter for Script {
        fn busy_since_last(&mut self) -> Option<f64> {
            self.0.pop_front().flatten()
        }
    }

    fn pace(samples: &[Option<f64>]) -> Pace {
        let pace = Pace::new(2, 64, Box::new(Script(samples.iter().copied().collect())));
        // Let every adjustment count.
        pace.meter.lock().expect("meter").1 -= SAMPLE_PERIOD * 100;
        pace
    }

    fn step(pace: &Pace, in_flight: usize) -> usize {
        pace.meter.lock().expect("meter").1 -= SAMPLE_PERIOD;
        pace.adjust(in_flight);
        pace.window()
    }

    #[test]
    fn a_full_window_widens_while_cpu_is_spare_and_narrows_when_saturated() {
        let p = pace(&[
            Some(0.1),
            Some(0.1),
            Some(0.1),
            Some(0.5),
            Some(1.0),
            Some(0.97),
        ]);
        assert_eq!(p.window(), 2);
        assert_eq!(step(&p, 2), 3);
        assert_eq!(step(&p, 3), 4);
        // Not full: no reason to widen.
        assert_eq!(step(&p, 1), 4);
        assert_eq!(step(&p, 4), 6);
        assert_eq!(step(&p, 6), 5);
        assert_eq!(step(&p, 5), 4);
    }

    #[test]
    fn the_window_stays_within_its_bounds() {
        let p = pace(&[Some(1.0); 10]);
        for _ in 0..10 {
            assert_eq!(step(&p, 2), 2);
        }
        let p = pace(&[Some(0.0); 40]);
        let mut window = 2;
        for _ in 0..20 {
            window = step(&p, window);
        }
        assert_eq!(window, 64);
    }

    #[test]
    fn a_host_without_cpu_counters_gets_the_full_window() {
        let p = pace(&[None]);
        assert_eq!(step(&p, 0), 64);
    }

    #[test]
    fn proc_stat_lines_parse_into_busy_and_total() {
        assert_eq!(
            parse_cpu_line("cpu  100 5 50 800 40 3 2 0 0 0"),
            Some((160, 1000))
        );
        assert_eq!(parse_cpu_line("cpu0 1 2 3 4 5"), None);
        assert_eq!(parse_cpu_line("cpu  x"), None);
        let mut stat = ProcStat::new();
        std::thread::sleep(Duration::from_millis(20));
        let busy = stat.busy_since_last();
        assert!(busy.is_none_or(|b| (0.0..=1.0).contains(&b)), "{busy:?}");
    }
}
