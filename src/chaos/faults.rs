//! The faults `orderflow chaos` injects: every process of the platform, SIGKILLed (its whole process
//! tree, so PostgreSQL loses its backends and Elasticsearch its launcher at the same instant, as in a
//! crash of the machine they run on), and started again the way the scripts start it:
//! `scripts/stack up <server>` for a server of the stack, `platform_start` of
//! `scripts/lib/platform.sh` for a process of the `orderflow` binary.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};

/// The servers of the stack (`scripts/stack`), in the order a full run kills them.
pub const SERVERS: [&str; 7] = [
    "postgres",
    "kafka",
    "connect",
    "registry",
    "elasticsearch",
    "s3",
    "identity",
];
/// The platform's own processes (`scripts/lib/platform.sh`).
pub const PROCESSES: [&str; 8] = [
    "orders",
    "inventory",
    "payments",
    "shipping",
    "customers",
    "worker",
    "sink",
    "reports",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A server of the stack.
    Server,
    /// A process of the `orderflow` binary.
    Platform,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    pub name: String,
    pub kind: Kind,
}

impl Component {
    /// Every component, servers first.
    pub fn all() -> Vec<Component> {
        SERVERS
            .iter()
            .map(|n| (n, Kind::Server))
            .chain(PROCESSES.iter().map(|n| (n, Kind::Platform)))
            .map(|(n, kind)| Component {
                name: n.to_string(),
                kind,
            })
            .collect()
    }

    /// A comma-separated list of names (or `all`).
    pub fn parse_list(list: &str) -> anyhow::Result<Vec<Component>> {
        if list.trim() == "all" {
            return Ok(Component::all());
        }
        list.split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|name| {
                Component::all()
                    .into_iter()
                    .find(|c| c.name == name)
                    .with_context(|| {
                        format!(
                            "--components: unknown component '{name}' (known: {}, {})",
                            SERVERS.join(", "),
                            PROCESSES.join(", ")
                        )
                    })
            })
            .collect()
    }

    fn pid_file(&self, state: &Path) -> PathBuf {
        match self.kind {
            Kind::Server => state.join(&self.name).join("pid"),
            Kind::Platform => state.join("platform").join(format!("{}.pid", self.name)),
        }
    }

    /// The pid the scripts recorded, if that process is alive.
    pub fn pid(&self, state: &Path) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.pid_file(state))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
    }

    /// SIGKILL the component's whole process tree at once; returns how many processes died.
    pub async fn kill(&self, state: &Path) -> anyhow::Result<usize> {
        let Some(root) = self.pid(state) else {
            bail!(
                "{} is not running (no live pid in {}): start it first",
                self.name,
                self.pid_file(state).display()
            );
        };
        let tree = process_tree(root);
        for pid in &tree {
            // SAFETY: kill(2) with a pid we just read from /proc; a pid that is gone is harmless.
            unsafe {
                libc::kill(*pid as i32, libc::SIGKILL);
            }
        }
        // Wait until the kernel has reaped them (or they are zombies of a parent that is gone).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tree.iter().any(|pid| alive(*pid)) {
            if tokio::time::Instant::now() > deadline {
                bail!("{}: processes still alive 10 s after SIGKILL", self.name);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(tree.len())
    }

    /// Start it again the way the scripts do, and wait until it is ready (the scripts wait).
    pub async fn restart(&self, root: &Path) -> anyhow::Result<()> {
        let mut command = match self.kind {
            Kind::Server => {
                let mut c = tokio::process::Command::new(root.join("scripts/stack"));
                c.args(["up", &self.name]);
                c
            }
            Kind::Platform => {
                let mut c = tokio::process::Command::new("bash");
                c.arg("-c").arg(
                    "source \"$ORDERFLOW_ROOT/scripts/lib/common.sh\" && \
                     source \"$ORDERFLOW_ROOT/scripts/lib/platform.sh\" && \
                     platform_start \"$ORDERFLOW_BIN\"",
                );
                c
            }
        };
        let output = command
            .env("ORDERFLOW_ROOT", root)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .with_context(|| format!("starting {} again", self.name))?;
        if !output.status.success() {
            bail!(
                "starting {} again failed: {}{}",
                self.name,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }
}

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // A zombie has died; its parent has not reaped it yet.
        Ok(stat) => !matches!(
            stat.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().chars().next()),
            Some(Some('Z'))
        ),
        Err(_) => false,
    }
}

/// `root` and every process descended from it.
fn process_tree(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // pid (comm) state ppid ...
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                parents.push((pid, ppid));
            }
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|(_, ppid)| *ppid == parent)
                .map(|(pid, _)| *pid),
        );
        i += 1;
    }
    tree
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_unknown_names_are_named() {
        let parsed = Component::parse_list("postgres, worker").unwrap();
        assert_eq!(parsed[0].kind, Kind::Server);
        assert_eq!(parsed[1].kind, Kind::Platform);
        assert_eq!(Component::parse_list("all").unwrap().len(), 15);
        let error = Component::parse_list("postgres,zookeeper").unwrap_err();
        assert!(format!("{error:#}").contains("'zookeeper'"), "{error:#}");
    }

    #[test]
    fn the_process_tree_holds_the_children() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & wait"])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let tree = process_tree(child.id());
        assert!(tree.len() >= 2, "sh and its sleep: {tree:?}");
        child.kill().unwrap();
        let _ = child.wait();
        for pid in tree {
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
        }
    }
}
