//! Percentiles, and the machine and build the bench runs on.

use serde_json::{Value, json};

/// p50/p95/p99/max of a set of durations in milliseconds (nearest-rank percentiles).
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    pub count: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Summary {
    pub fn of(values: &[f64]) -> Summary {
        if values.is_empty() {
            return Summary::default();
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
            sorted[i.clamp(1, sorted.len()) - 1]
        };
        Summary {
            count: sorted.len(),
            p50: rank(50.0),
            p95: rank(95.0),
            p99: rank(99.0),
            max: *sorted.last().unwrap_or(&0.0),
            mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
        }
    }

    pub fn json(&self) -> Value {
        json!({"count": self.count, "p50_ms": round(self.p50), "p95_ms": round(self.p95),
               "p99_ms": round(self.p99), "max_ms": round(self.max), "mean_ms": round(self.mean)})
    }
}

pub fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// nproc, memory, CPU model and kernel, from /proc.
pub fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let loadavg = std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string();
    json!({"nproc": nproc, "memory_mib": mem_kb / 1024, "cpu_model": model, "kernel": kernel,
           "loadavg_at_start": loadavg, "build": build_profile()})
}

/// The Cargo profile this binary was built with: the name of the directory it lives in under the
/// target directory (`debug` for the dev profile, `release`, or a custom profile's name), checked
/// against whether debug assertions are compiled in.
pub fn build_profile() -> String {
    let dir = std::env::current_exe().ok().and_then(|p| {
        p.parent()
            .and_then(|d| d.file_name())
            .map(|n| n.to_string_lossy().into_owned())
    });
    match (dir.as_deref(), cfg!(debug_assertions)) {
        (Some("debug"), true) => "debug".into(),
        (Some("release"), false) => "release".into(),
        (Some(name), assertions) if name != "deps" && name != "examples" => {
            format!(
                "{name} (debug assertions {})",
                if assertions { "on" } else { "off" }
            )
        }
        (_, true) => "debug".into(),
        (_, false) => "release".into(),
    }
}
