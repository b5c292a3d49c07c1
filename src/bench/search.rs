//! The step-up search for the highest rate the pipeline sustains, as plain data so it can be tested
//! without a pipeline: the "keeps up" rule applied to one phase's figures, and the choice of the next
//! rate (double until a phase falls behind, halve while the first one does, then bisect between the
//! last rate that kept up and the first that did not).

use serde_json::{Value, json};

/// The rule, in words, as printed with the results.
pub const RULE: &str = "a phase keeps up when >= 95% of its orders complete, completions run at >= 90% of the offered rate, \
p95 scheduled -> COMPLETED stays <= 3x the fixed-rate run's p95 (and never grows past that in flight), \
and the bench starts orders on time (p99 behind schedule <= 100 ms)";

/// What one phase did, for the rule.
#[derive(Debug, Clone, Copy)]
pub struct PhaseFigures {
    pub offered_per_second: f64,
    pub orders: usize,
    pub completed: usize,
    pub finished_per_second: f64,
    pub p95_completed_ms: f64,
    pub behind_schedule_p99_ms: f64,
    /// The phase stopped early: more orders in flight than the latency bound allows.
    pub aborted_backlog: bool,
}

/// The verdict on one phase and, when it fell behind, every reason why.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub keeps_up: bool,
    pub reasons: Vec<String>,
}

pub fn judge(phase: &PhaseFigures, baseline_p95_ms: f64) -> Verdict {
    let mut reasons = Vec::new();
    let share = phase.completed as f64 / phase.orders.max(1) as f64;
    if share < 0.95 {
        reasons.push(format!("{:.0}% completed", share * 100.0));
    }
    if phase.finished_per_second < 0.9 * phase.offered_per_second {
        reasons.push(format!(
            "finished {:.1}/s < 90% of {:.1}/s",
            phase.finished_per_second, phase.offered_per_second
        ));
    }
    let bound = latency_bound_ms(baseline_p95_ms);
    if phase.p95_completed_ms > bound {
        reasons.push(format!(
            "p95 {:.0} ms > 3 x {:.0} ms",
            phase.p95_completed_ms, baseline_p95_ms
        ));
    }
    if phase.aborted_backlog {
        reasons.push("backlog past rate x the latency bound: stopped early".into());
    }
    if phase.behind_schedule_p99_ms > 100.0 {
        reasons.push(format!(
            "the bench itself started orders late (p99 {:.0} ms)",
            phase.behind_schedule_p99_ms
        ));
    }
    Verdict {
        keeps_up: reasons.is_empty(),
        reasons,
    }
}

/// The p95 a phase may reach and still keep up (never below one second, for a tiny baseline).
pub fn latency_bound_ms(baseline_p95_ms: f64) -> f64 {
    3.0 * baseline_p95_ms.max(1000.0 / 3.0)
}

/// How many orders may be in flight at `rate` before the latency bound is certainly broken
/// (Little's law: in flight = rate x time in the system), plus slack for a short burst.
pub fn backlog_limit(rate: f64, baseline_p95_ms: f64) -> usize {
    (rate * latency_bound_ms(baseline_p95_ms) / 1000.0 + rate.max(10.0)).ceil() as usize
}

/// The search: which rates kept up, which did not, and what to try next.
#[derive(Debug, Clone)]
pub struct Search {
    pub min_rate: f64,
    pub max_rate: f64,
    /// How many bisection phases to run between the bracket's ends.
    pub bisections: usize,
    /// Stop bisecting once the bracket is narrower than this fraction of its lower end.
    pub resolution: f64,
    good: Option<f64>,
    bad: Option<f64>,
    bisected: usize,
    pub tried: Vec<(f64, bool)>,
}

impl Search {
    pub fn new(min_rate: f64, max_rate: f64, bisections: usize) -> Search {
        Search {
            min_rate,
            max_rate,
            bisections,
            resolution: 0.05,
            good: None,
            bad: None,
            bisected: 0,
            tried: Vec::new(),
        }
    }

    /// Record a phase's verdict at `rate`.
    pub fn record(&mut self, rate: f64, keeps_up: bool) {
        if self.good.is_some() && self.bad.is_some() {
            self.bisected += 1;
        }
        self.tried.push((rate, keeps_up));
        if keeps_up {
            self.good = Some(self.good.map_or(rate, |g| g.max(rate)));
        } else {
            self.bad = Some(self.bad.map_or(rate, |b| b.min(rate)));
        }
    }

    /// The next rate to try, or `None` when the search is over.
    pub fn next(&self) -> Option<f64> {
        match (self.good, self.bad) {
            (None, None) => Some(self.min_rate),
            (Some(good), None) => {
                (good < self.max_rate).then(|| round_rate((good * 2.0).min(self.max_rate)))
            }
            (None, Some(bad)) => {
                (bad > self.min_rate).then(|| round_rate((bad / 2.0).max(self.min_rate)))
            }
            (Some(good), Some(bad)) => {
                let mid = round_rate((good + bad) / 2.0);
                let narrow = bad - good <= self.resolution * good;
                (self.bisected < self.bisections && !narrow && mid > good && mid < bad)
                    .then_some(mid)
            }
        }
    }

    /// The highest rate that kept up.
    pub fn sustained(&self) -> Option<f64> {
        self.good
    }

    /// The first rate above it that did not.
    pub fn fell_behind_at(&self) -> Option<f64> {
        self.bad
    }

    pub fn json(&self) -> Value {
        json!({"min_rate": self.min_rate, "max_rate": self.max_rate, "bisections": self.bisections,
               "highest_sustained_per_second": self.sustained(),
               "first_not_sustained_per_second": self.fell_behind_at(),
               "tried": self.tried.iter().map(|(rate, kept)| json!({"rate": rate, "keeps_up": kept})).collect::<Vec<_>>()})
    }
}

/// Rates to a tenth of an order per second below 100/s, whole numbers above.
fn round_rate(rate: f64) -> f64 {
    if rate >= 100.0 {
        rate.round()
    } else {
        (rate * 10.0).round() / 10.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the search against a pipeline that keeps up exactly up to `capacity`.
    fn search(start: f64, capacity: f64, bisections: usize) -> Search {
        let mut s = Search::new(0.5, 640.0, bisections);
        s.record(start, start <= capacity);
        while let Some(rate) = s.next() {
            s.record(rate, rate <= capacity);
        }
        s
    }

    #[test]
    fn doubles_then_bisects_between_the_last_good_and_the_first_bad_rate() {
        let s = search(5.0, 37.0, 3);
        let rates: Vec<f64> = s.tried.iter().map(|(r, _)| *r).collect();
        // 5, 10, 20 keep up, 40 does not; then 30, 35, 37.5.
        assert_eq!(rates, vec![5.0, 10.0, 20.0, 40.0, 30.0, 35.0, 37.5]);
        assert_eq!(s.sustained(), Some(35.0));
        assert_eq!(s.fell_behind_at(), Some(37.5));
    }

    #[test]
    fn goes_well_past_a_hundred_orders_per_second() {
        let s = search(5.0, 250.0, 3);
        assert_eq!(
            s.tried[..7].iter().map(|(r, _)| *r).collect::<Vec<_>>(),
            vec![5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0]
        );
        assert_eq!(s.sustained(), Some(240.0));
        assert_eq!(s.fell_behind_at(), Some(260.0));
    }

    #[test]
    fn halves_when_the_first_rate_falls_behind() {
        let s = search(5.0, 3.0, 2);
        let rates: Vec<f64> = s.tried.iter().map(|(r, _)| *r).collect();
        assert_eq!(rates[..3], [5.0, 2.5, 3.8]);
        assert_eq!(rates.len(), 4, "two bisections: {rates:?}");
        assert!(rates[3] > 3.0 && rates[3] < 3.8, "{rates:?}");
        assert_eq!(s.sustained(), Some(2.5));
        assert_eq!(s.fell_behind_at(), Some(rates[3]));
    }

    #[test]
    fn stops_at_the_maximum_and_at_the_minimum() {
        let s = search(5.0, 10_000.0, 3);
        assert_eq!(s.sustained(), Some(640.0));
        assert_eq!(s.tried.last(), Some(&(640.0, true)));
        let s = search(5.0, 0.1, 3);
        assert_eq!(s.sustained(), None);
        assert_eq!(s.tried.last(), Some(&(0.5, false)));
    }

    #[test]
    fn no_bisection_once_the_bracket_is_narrow() {
        let mut s = Search::new(0.5, 640.0, 5);
        s.record(100.0, true);
        s.record(104.0, false);
        assert_eq!(s.next(), None);
    }

    #[test]
    fn the_rule_names_every_reason() {
        let good = PhaseFigures {
            offered_per_second: 10.0,
            orders: 200,
            completed: 200,
            finished_per_second: 9.8,
            p95_completed_ms: 5000.0,
            behind_schedule_p99_ms: 3.0,
            aborted_backlog: false,
        };
        assert!(judge(&good, 4000.0).keeps_up);
        let bad = PhaseFigures {
            completed: 150,
            finished_per_second: 7.0,
            p95_completed_ms: 13000.0,
            behind_schedule_p99_ms: 250.0,
            aborted_backlog: true,
            ..good
        };
        let verdict = judge(&bad, 4000.0);
        assert!(!verdict.keeps_up);
        assert_eq!(verdict.reasons.len(), 5, "{:?}", verdict.reasons);
        assert_eq!(backlog_limit(10.0, 4000.0), 130);
    }
}
