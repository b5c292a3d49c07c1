//! Where the CPU and memory go during a run: every process of the stack (PostgreSQL with all its
//! backends, Kafka, Connect, the registry, Elasticsearch, the S3 server) and of the platform, each as
//! the whole process tree under the pid its script recorded, plus the bench itself and the machine's
//! total from /proc/stat over the same window.
//!
//! A tree's CPU is the sum over its live processes of utime + stime + cutime + cstime: a backend that
//! exits during the window moves its time into its parent's cutime/cstime when it is reaped, so it is
//! still counted, once. Memory is sampled every five seconds as the tree's summed PSS (proportional
//! set size, so PostgreSQL's shared buffers are not counted once per backend; reading it walks the
//! page tables, which for the JVMs costs the bench a few milliseconds each); VmHWM is the largest
//! lifetime peak RSS of any one process of the tree.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::{Value, json};

use super::stats::round;

/// The stack's components, by the pid file `scripts/stack` writes ($ORDERFLOW_STATE/<name>/pid).
pub const STACK: [&str; 6] = [
    "postgres",
    "kafka",
    "registry",
    "connect",
    "elasticsearch",
    "s3",
];

/// A process tree to measure: its root pid and what it is.
#[derive(Debug, Clone)]
pub struct Watched {
    pub group: &'static str,
    pub name: String,
    pub root: u32,
}

fn read_pid(path: &Path) -> Option<u32> {
    let pid = std::fs::read_to_string(path).ok()?.trim().parse().ok()?;
    Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}

/// The stack's servers, the platform processes ($ORDERFLOW_STATE/platform/*.pid) and the bench.
pub fn watched(state: &Path) -> Vec<Watched> {
    let mut found = Vec::new();
    for name in STACK {
        if let Some(root) = read_pid(&state.join(name).join("pid")) {
            found.push(Watched {
                group: "stack",
                name: name.to_string(),
                root,
            });
        }
    }
    let mut platform = Vec::new();
    for entry in std::fs::read_dir(state.join("platform"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("pid") {
            continue;
        }
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
        if let Some(root) = read_pid(&path) {
            platform.push(Watched {
                group: "platform",
                name: name.to_string(),
                root,
            });
        }
    }
    platform.sort_by(|a, b| a.name.cmp(&b.name));
    found.extend(platform);
    found.push(Watched {
        group: "bench",
        name: "bench (this process)".into(),
        root: std::process::id(),
    });
    found
}

/// The executable of a process (`/proc/<pid>/exe`), " (deleted)" when it was replaced since.
pub fn exe(pid: u32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .map(|p| p.display().to_string())
}

pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// ppid and utime + stime + cutime + cstime (ticks) of one process.
fn stat(pid: u32) -> Option<(u32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: split after the last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
    // After the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
    let ppid = fields.get(1)?.parse().ok()?;
    let ticks = (11..=14)
        .map(|i| {
            fields
                .get(i)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0)
        })
        .sum::<i64>();
    Some((ppid, ticks.max(0) as u64))
}

/// Every live process: pid → (ppid, ticks).
fn processes() -> HashMap<u32, (u32, u64)> {
    let mut all = HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok())
            && let Some(s) = stat(pid)
        {
            all.insert(pid, s);
        }
    }
    all
}

fn tree(root: u32, all: &HashMap<u32, (u32, u64)>) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (pid, (ppid, _)) in all {
        children.entry(*ppid).or_default().push(*pid);
    }
    let mut found = Vec::new();
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        if !all.contains_key(&pid) {
            continue;
        }
        found.push(pid);
        stack.extend(children.get(&pid).into_iter().flatten());
    }
    found
}

/// A `/proc/<pid>/status` or `smaps_rollup` field in KiB.
fn kib(pid: u32, file: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
    text.lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// Busy and total ticks of the whole machine, from the `cpu` line of /proc/stat.
fn machine_ticks() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = text
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already inside user).
    let total: u64 = fields.iter().sum();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

#[derive(Debug, Clone, Copy, Default)]
struct TreeSample {
    ticks: u64,
}

fn sample_trees(watched: &[Watched]) -> Vec<TreeSample> {
    let all = processes();
    watched
        .iter()
        .map(|w| {
            let pids = tree(w.root, &all);
            TreeSample {
                ticks: pids.iter().map(|p| all[p].1).sum(),
            }
        })
        .collect()
}

/// CPU at the start of a window and the peaks sampled during it, per watched tree.
pub struct CostWindow {
    watched: Vec<Watched>,
    start: Vec<TreeSample>,
    start_wall: f64,
    machine_start: (u64, u64),
    peak_pss_kib: Vec<u64>,
    peak_processes: Vec<usize>,
    peak_hwm_kib: Vec<u64>,
    ticks_per_second: f64,
}

impl CostWindow {
    pub fn start(watched: Vec<Watched>) -> CostWindow {
        let mut window = CostWindow {
            start: sample_trees(&watched),
            start_wall: super::pipeline::now(),
            machine_start: machine_ticks(),
            peak_pss_kib: vec![0; watched.len()],
            peak_processes: vec![0; watched.len()],
            peak_hwm_kib: vec![0; watched.len()],
            ticks_per_second: clock_ticks(),
            watched,
        };
        window.sample();
        window
    }

    /// Memory of every tree now (called every five seconds).
    pub fn sample(&mut self) {
        let all = processes();
        for (i, w) in self.watched.iter().enumerate() {
            let pids = tree(w.root, &all);
            let hwm = pids
                .iter()
                .filter_map(|p| kib(*p, "status", "VmHWM"))
                .max()
                .unwrap_or(0);
            self.peak_hwm_kib[i] = self.peak_hwm_kib[i].max(hwm);
            let pss: u64 = pids
                .iter()
                .filter_map(|p| kib(*p, "smaps_rollup", "Pss"))
                .sum();
            self.peak_pss_kib[i] = self.peak_pss_kib[i].max(pss);
            self.peak_processes[i] = self.peak_processes[i].max(pids.len());
        }
    }

    /// One row per tree, the machine's total and what no tree accounts for.
    pub fn finish(&mut self, completed: usize) -> Value {
        self.sample();
        let end = sample_trees(&self.watched);
        let machine_end = machine_ticks();
        let wall = super::pipeline::now() - self.start_wall;
        let hz = self.ticks_per_second;
        let per_k = |cpu: f64| {
            if completed > 0 {
                round(cpu * 1000.0 / completed as f64)
            } else {
                0.0
            }
        };
        let busy = machine_end.0.saturating_sub(self.machine_start.0) as f64 / hz;
        let capacity = machine_end.1.saturating_sub(self.machine_start.1) as f64 / hz;
        let mut rows = Vec::new();
        let mut accounted = 0.0;
        let mut by_group: BTreeMap<&str, f64> = BTreeMap::new();
        for (i, w) in self.watched.iter().enumerate() {
            let cpu = end[i].ticks.saturating_sub(self.start[i].ticks) as f64 / hz;
            accounted += cpu;
            *by_group.entry(w.group).or_default() += cpu;
            rows.push(json!({
                "group": w.group, "process": w.name, "pid": w.root,
                "processes_in_tree_peak": self.peak_processes[i],
                "cpu_seconds": round(cpu),
                "cpu_seconds_per_1000_orders": per_k(cpu),
                "share_of_machine_busy": if busy > 0.0 { round(cpu / busy * 100.0) } else { 0.0 },
                "peak_pss_mib": round(self.peak_pss_kib[i] as f64 / 1024.0),
                "largest_vmhwm_mib": round(self.peak_hwm_kib[i] as f64 / 1024.0),
            }));
        }
        json!({
            "window_seconds": round(wall),
            "cpus": if wall > 0.0 { round(capacity / wall) } else { 0.0 },
            "completed_orders": completed,
            "processes": rows,
            "groups_cpu_seconds": by_group.iter().map(|(k, v)| (k.to_string(), round(*v))).collect::<BTreeMap<_, _>>(),
            "machine": {
                "source": "/proc/stat cpu line: busy = user+nice+system+irq+softirq+steal, capacity = busy+idle+iowait",
                "capacity_cpu_seconds": round(capacity),
                "busy_cpu_seconds": round(busy),
                "busy_percent": if capacity > 0.0 { round(busy / capacity * 100.0) } else { 0.0 },
                "busy_cpu_seconds_per_1000_orders": per_k(busy),
                "measured_processes_cpu_seconds": round(accounted),
                "not_accounted_cpu_seconds": round(busy - accounted),
                "not_accounted_note": "other processes on the machine (builds, tests, shells) and kernel work outside any watched tree",
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_holds_the_root_and_every_descendant() {
        let all: HashMap<u32, (u32, u64)> = [
            (1, (0, 5)),
            (10, (1, 7)),
            (11, (10, 3)),
            (12, (10, 4)),
            (20, (1, 100)),
        ]
        .into_iter()
        .collect();
        let mut pids = tree(10, &all);
        pids.sort();
        assert_eq!(pids, vec![10, 11, 12]);
        assert!(tree(99, &all).is_empty());
    }

    #[test]
    fn our_own_process_is_measured() {
        let (ppid, _) = stat(std::process::id()).expect("/proc/self/stat");
        assert_eq!(ppid, std::os::unix::process::parent_id());
        let (busy, total) = machine_ticks();
        assert!(total >= busy && total > 0);
    }
}
