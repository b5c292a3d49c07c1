//! Percentiles, the machine's description, and the CPU/memory of our processes from /proc.

use std::collections::BTreeMap;
use std::path::Path;

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
           "loadavg_at_start": loadavg,
           "build": if cfg!(debug_assertions) { "debug" } else { "release" }})
}

/// One of our platform processes, by the pid file scripts/demo and scripts/bench write.
#[derive(Debug, Clone)]
pub struct Process {
    pub name: String,
    pub pid: u32,
}

pub fn platform_processes(dir: &Path) -> Vec<Process> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("pid") {
            continue;
        }
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("?")
            .to_string();
        let Some(pid) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            found.push(Process { name, pid });
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of a process, in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(0) ... utime is field 14 of the line, i.e. index 11 here; stime 12.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

/// A `/proc/<pid>/status` field in KiB (VmRSS, VmHWM).
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// CPU seconds at the start of a window and the highest RSS sampled during it, per process.
#[derive(Debug, Default)]
pub struct CostWindow {
    pub cpu_start: BTreeMap<String, (u32, f64)>,
    pub rss_peak_kib: BTreeMap<String, u64>,
}

impl CostWindow {
    pub fn start(processes: &[Process]) -> CostWindow {
        let mut window = CostWindow::default();
        for p in processes {
            if let Some(cpu) = cpu_seconds(p.pid) {
                window.cpu_start.insert(p.name.clone(), (p.pid, cpu));
            }
        }
        window.sample();
        window
    }

    pub fn sample(&mut self) {
        for (name, (pid, _)) in &self.cpu_start {
            if let Some(rss) = status_kib(*pid, "VmRSS") {
                let peak = self.rss_peak_kib.entry(name.clone()).or_default();
                *peak = (*peak).max(rss);
            }
        }
    }

    /// One row per process: CPU seconds in the window, per thousand orders, peak RSS.
    pub fn finish(&mut self, orders: usize) -> Vec<Value> {
        self.sample();
        let mut rows = Vec::new();
        for (name, (pid, start)) in &self.cpu_start {
            let cpu = cpu_seconds(*pid).map(|end| end - start).unwrap_or(0.0);
            let per_k = if orders > 0 {
                cpu * 1000.0 / orders as f64
            } else {
                0.0
            };
            rows.push(json!({
                "process": name, "pid": pid,
                "cpu_seconds": round(cpu),
                "cpu_seconds_per_1000_orders": round(per_k),
                "peak_rss_mib_during_run": round(*self.rss_peak_kib.get(name).unwrap_or(&0) as f64 / 1024.0),
                "peak_rss_mib_since_start_vmhwm": round(status_kib(*pid, "VmHWM").unwrap_or(0) as f64 / 1024.0),
            }));
        }
        rows
    }
}
