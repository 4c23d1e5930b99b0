//! What the process uses and what it may use: resident memory and CPU time from `/proc`,
//! limits from cgroup v2 (`memory.max`, `cpu.max`), with the host's memory and cores as
//! the fallback when no cgroup limit applies.
//!
//! The CPU and memory triggers and the memory limiter read through [`Resources`], so a
//! threshold such as "80 % of memory" means 80 % of the container's limit inside a
//! container and 80 % of the machine outside one.
//!
//! Both file-system roots are injectable ([`ProcFs::new`], [`CgroupFs::new`]) so tests can
//! point them at a directory of scripted files. The layout read below the roots is:
//!
//! | file | what is read |
//! |------|--------------|
//! | `PROC/self/status` | `VmRSS` (resident set size) |
//! | `PROC/self/stat` | `utime` + `stime` (CPU time, in clock ticks) |
//! | `PROC/self/cgroup` | the cgroup v2 line `0::/path` |
//! | `PROC/meminfo` | `MemTotal` (host memory) |
//! | `CGROUP/path/memory.max` | `max` or a byte count, on the process's cgroup and each ancestor |
//! | `CGROUP/path/memory.current`, `memory.stat` | usage of the cgroup that sets the limit, minus `inactive_file` |
//! | `CGROUP/path/cpu.max` | `max PERIOD` or `QUOTA PERIOD`, on the process's cgroup and each ancestor |
//!
//! A missing cgroup file means "no limit at this level"; a missing `/proc` file is an
//! error, because without it there is nothing to measure.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Clock ticks per second in `/proc/PID/stat`. The kernel reports CPU times there in
/// `USER_HZ` units, which is 100 on every architecture Linux currently ships for servers
/// (x86, arm64, ppc64, s390x, riscv).
const DEFAULT_TICKS_PER_SECOND: u32 = 100;

/// Where `/proc` is mounted, and how to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcFs {
    root: PathBuf,
    ticks_per_second: u32,
}

impl Default for ProcFs {
    /// `/proc`, 100 ticks a second.
    fn default() -> Self {
        ProcFs::new("/proc")
    }
}

impl ProcFs {
    /// A `/proc` mounted at `root` (tests pass a temporary directory holding `self/status`,
    /// `self/stat`, `self/cgroup` and `meminfo`).
    pub fn new(root: impl Into<PathBuf>) -> ProcFs {
        ProcFs {
            root: root.into(),
            ticks_per_second: DEFAULT_TICKS_PER_SECOND,
        }
    }

    /// Override the clock-tick rate used to convert `utime`/`stime` (`getconf CLK_TCK`);
    /// only needed on the rare architecture where it is not 100. Zero is taken as 100.
    pub fn with_ticks_per_second(mut self, ticks: u32) -> ProcFs {
        self.ticks_per_second = if ticks == 0 {
            DEFAULT_TICKS_PER_SECOND
        } else {
            ticks
        };
        self
    }

    /// The mount point.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resident set size of this process in bytes (`VmRSS` of `self/status`).
    pub fn rss_bytes(&self) -> Result<u64, ResourceError> {
        let path = self.root.join("self/status");
        let text = read(&path)?;
        kib_field(&text, "VmRSS:", &path)
    }

    /// CPU time this process has used, user plus system (`utime` + `stime` of `self/stat`).
    pub fn cpu_time(&self) -> Result<Duration, ResourceError> {
        let path = self.root.join("self/stat");
        let text = read(&path)?;
        // The command name (field 2) is in parentheses and may itself hold spaces and
        // parentheses, so fields are counted from the last ')'.
        let rest = text
            .rfind(')')
            .map(|i| &text[i + 1..])
            .ok_or_else(|| parse_error(&path, "no ')' closing the command name"))?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // After the name: state is field 3, utime field 14, stime field 15 (proc(5)).
        let ticks = |index: usize, name: &str| -> Result<u64, ResourceError> {
            fields
                .get(index)
                .and_then(|f| f.parse::<u64>().ok())
                .ok_or_else(|| {
                    parse_error(&path, &format!("field {name} is missing or not a number"))
                })
        };
        let total = ticks(11, "utime")?.saturating_add(ticks(12, "stime")?);
        let per_second = u64::from(self.ticks_per_second);
        Ok(Duration::from_secs(total / per_second)
            + Duration::from_nanos((total % per_second) * 1_000_000_000 / per_second))
    }

    /// Total memory of the host in bytes (`MemTotal` of `meminfo`).
    pub fn host_memory_bytes(&self) -> Result<u64, ResourceError> {
        let path = self.root.join("meminfo");
        let text = read(&path)?;
        kib_field(&text, "MemTotal:", &path)
    }

    /// The process's cgroup v2 path (the `0::/path` line of `self/cgroup`), or `None` when
    /// the process is not in a cgroup v2 hierarchy.
    pub fn cgroup_v2_path(&self) -> Result<Option<String>, ResourceError> {
        let path = self.root.join("self/cgroup");
        let text = read(&path)?;
        Ok(text.lines().find_map(|line| {
            let mut parts = line.splitn(3, ':');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("0"), Some(""), Some(p)) => Some(p.trim().to_owned()),
                _ => None,
            }
        }))
    }
}

/// Where the cgroup v2 hierarchy is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupFs {
    root: PathBuf,
}

impl Default for CgroupFs {
    /// `/sys/fs/cgroup`.
    fn default() -> Self {
        CgroupFs::new("/sys/fs/cgroup")
    }
}

impl CgroupFs {
    /// A cgroup v2 hierarchy mounted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> CgroupFs {
        CgroupFs { root: root.into() }
    }

    /// The mount point.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// Whether a limit comes from the process's cgroup or from the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitSource {
    /// A cgroup v2 `memory.max` or `cpu.max` set the limit.
    Cgroup,
    /// No cgroup limit applies: the host's memory or cores.
    Host,
}

/// How much memory the process may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimit {
    /// The limit in bytes.
    pub bytes: u64,
    /// Where it comes from.
    pub source: LimitSource,
}

/// How many cores the process may use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuLimit {
    /// Cores, possibly fractional (`cpu.max` of `50000 100000` is 0.5).
    pub cores: f64,
    /// Where it comes from.
    pub source: LimitSource,
}

/// One reading of memory use against the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryReading {
    /// Resident set size of this process.
    pub rss_bytes: u64,
    /// Working set of the cgroup that sets the limit (`memory.current` minus
    /// `inactive_file` of `memory.stat`), when a cgroup limit applies and the file is there.
    pub cgroup_bytes: Option<u64>,
    /// The limit.
    pub limit: MemoryLimit,
}

impl MemoryReading {
    /// The usage to compare with the limit: the cgroup's working set when a cgroup limit
    /// applies (that is what the kernel's OOM killer compares with `memory.max`, without
    /// the page cache it reclaims first), otherwise the process's RSS.
    pub fn used_bytes(&self) -> u64 {
        match (self.limit.source, self.cgroup_bytes) {
            (LimitSource::Cgroup, Some(bytes)) => bytes,
            _ => self.rss_bytes,
        }
    }

    /// [`used_bytes`](Self::used_bytes) as a share of the limit (0.0 ..; above 1.0 only if
    /// the limit was lowered under current use). A zero limit gives 1.0.
    pub fn share(&self) -> f64 {
        if self.limit.bytes == 0 {
            return 1.0;
        }
        self.used_bytes() as f64 / self.limit.bytes as f64
    }
}

/// A file under `/proc` or the cgroup hierarchy could not be read or understood.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    /// The file could not be read.
    #[error(
        "cannot read {path}: {source}; check that /proc and /sys/fs/cgroup are mounted and readable, or point ProcFs/CgroupFs at where they are"
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file did not hold what the kernel documents.
    #[error(
        "unexpected content in {path}: {reason}; this kernel's format is not supported, please report it"
    )]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
}

/// Readings of this process's memory and CPU and of the limits that apply to it.
///
/// Cheap to clone. Every call reads the files again, so cgroup limits changed at run time
/// (a container resized in place) are picked up; the host's memory and cores are read
/// once, as they do not change while the process runs.
///
/// ```
/// use otlp_degradation::resources::Resources;
///
/// let resources = Resources::detect();
/// if let Ok(memory) = resources.memory() {
///     println!("{:.0} % of {} bytes", memory.share() * 100.0, memory.limit.bytes);
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Resources {
    proc_fs: ProcFs,
    /// The process's cgroup directory first, then each ancestor up to the mount point.
    cgroup_chain: Arc<[PathBuf]>,
    /// `std::thread::available_parallelism` reads several files; once is enough.
    host_cores: f64,
    host_memory: Arc<OnceLock<u64>>,
}

impl Resources {
    /// This process on this machine: `/proc` and `/sys/fs/cgroup`.
    pub fn detect() -> Resources {
        Resources::new(ProcFs::default(), CgroupFs::default())
    }

    /// Readings from the given roots. The process's cgroup is looked up once, here; when
    /// `self/cgroup` cannot be read or names no cgroup v2 path, only host limits apply.
    pub fn new(proc_fs: ProcFs, cgroup_fs: CgroupFs) -> Resources {
        let cgroup_chain = match proc_fs.cgroup_v2_path() {
            Ok(Some(path)) => cgroup_chain(&cgroup_fs.root, &path),
            Ok(None) | Err(_) => Vec::new(),
        };
        Resources {
            proc_fs,
            cgroup_chain: cgroup_chain.into(),
            host_cores: std::thread::available_parallelism().map_or(1, usize::from) as f64,
            host_memory: Arc::new(OnceLock::new()),
        }
    }

    /// The `/proc` this reads.
    pub fn proc_fs(&self) -> &ProcFs {
        &self.proc_fs
    }

    /// The process's cgroup v2 directory, if it is in one.
    pub fn cgroup_dir(&self) -> Option<&Path> {
        self.cgroup_chain.first().map(PathBuf::as_path)
    }

    /// Resident set size of this process in bytes.
    pub fn rss_bytes(&self) -> Result<u64, ResourceError> {
        self.proc_fs.rss_bytes()
    }

    /// CPU time this process has used (user plus system) since it started.
    pub fn cpu_time(&self) -> Result<Duration, ResourceError> {
        self.proc_fs.cpu_time()
    }

    /// The memory limit: the smallest `memory.max` of the process's cgroup and its
    /// ancestors, or the host's `MemTotal` when none is set (or when it is larger).
    pub fn memory_limit(&self) -> Result<MemoryLimit, ResourceError> {
        Ok(self.memory_limit_at()?.0)
    }

    /// Memory use against the limit.
    pub fn memory(&self) -> Result<MemoryReading, ResourceError> {
        let rss_bytes = self.proc_fs.rss_bytes()?;
        let (limit, limiting_dir) = self.memory_limit_at()?;
        let cgroup_bytes = match limiting_dir {
            Some(dir) => cgroup_working_set(dir)?,
            None => None,
        };
        Ok(MemoryReading {
            rss_bytes,
            cgroup_bytes,
            limit,
        })
    }

    /// The CPU limit: the smallest `cpu.max` quota of the process's cgroup and its
    /// ancestors, or the cores the host lets this process run on
    /// (`std::thread::available_parallelism`) when that is smaller or no quota is set.
    pub fn cpu_limit(&self) -> Result<CpuLimit, ResourceError> {
        let host = self.host_cores;
        let mut cgroup: Option<f64> = None;
        for dir in self.cgroup_chain.iter() {
            let path = dir.join("cpu.max");
            let Some(text) = read_optional(&path)? else {
                continue;
            };
            if let Some(cores) = parse_cpu_max(&text, &path)? {
                cgroup = Some(cgroup.map_or(cores, |c| c.min(cores)));
            }
        }
        Ok(match cgroup {
            Some(cores) if cores < host => CpuLimit {
                cores,
                source: LimitSource::Cgroup,
            },
            _ => CpuLimit {
                cores: host,
                source: LimitSource::Host,
            },
        })
    }

    /// The limit and the cgroup directory that sets it (`None` for the host).
    fn memory_limit_at(&self) -> Result<(MemoryLimit, Option<&Path>), ResourceError> {
        let mut smallest: Option<(u64, &Path)> = None;
        for dir in self.cgroup_chain.iter() {
            let path = dir.join("memory.max");
            let Some(text) = read_optional(&path)? else {
                continue;
            };
            let text = text.trim();
            if text == "max" {
                continue;
            }
            let bytes = text.parse::<u64>().map_err(|_| {
                parse_error(
                    &path,
                    &format!("{text:?} is neither \"max\" nor a byte count"),
                )
            })?;
            if smallest.is_none_or(|(b, _)| bytes < b) {
                smallest = Some((bytes, dir));
            }
        }
        let host = match self.host_memory.get() {
            Some(&bytes) => bytes,
            None => {
                let bytes = self.proc_fs.host_memory_bytes()?;
                *self.host_memory.get_or_init(|| bytes)
            }
        };
        Ok(match smallest {
            // A cgroup limit above the machine's memory never binds; the machine does.
            Some((bytes, dir)) if bytes < host => (
                MemoryLimit {
                    bytes,
                    source: LimitSource::Cgroup,
                },
                Some(dir),
            ),
            _ => (
                MemoryLimit {
                    bytes: host,
                    source: LimitSource::Host,
                },
                None,
            ),
        })
    }
}

/// The process's cgroup directory and its ancestors up to `root`, leaf first.
fn cgroup_chain(root: &Path, cgroup: &str) -> Vec<PathBuf> {
    let relative = Path::new(cgroup.trim_start_matches('/'));
    // A path with `..` means the process sits outside its cgroup namespace's root; only the
    // mount point itself can be trusted then.
    let safe = relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    let leaf = root.join(relative);
    if !safe || !leaf.is_dir() {
        // Without a cgroup namespace a container sees the host's path in `self/cgroup`
        // while its own cgroup is mounted at the root.
        return vec![root.to_path_buf()];
    }
    let mut chain: Vec<PathBuf> = Vec::new();
    let mut dir = leaf.as_path();
    loop {
        chain.push(dir.to_path_buf());
        if dir == root {
            break;
        }
        match dir.parent() {
            Some(parent) => dir = parent,
            None => break,
        }
    }
    chain
}

fn cgroup_working_set(dir: &Path) -> Result<Option<u64>, ResourceError> {
    let path = dir.join("memory.current");
    let Some(text) = read_optional(&path)? else {
        return Ok(None);
    };
    let current = text
        .trim()
        .parse::<u64>()
        .map_err(|_| parse_error(&path, &format!("{:?} is not a byte count", text.trim())))?;
    let stat_path = dir.join("memory.stat");
    let inactive_file = match read_optional(&stat_path)? {
        Some(stat) => stat
            .lines()
            .find_map(|line| line.strip_prefix("inactive_file "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0),
        None => 0,
    };
    Ok(Some(current.saturating_sub(inactive_file)))
}

/// Cores allowed by a `cpu.max` text, `None` for `max`.
fn parse_cpu_max(text: &str, path: &Path) -> Result<Option<f64>, ResourceError> {
    let mut parts = text.split_whitespace();
    let quota = parts
        .next()
        .ok_or_else(|| parse_error(path, "the file is empty"))?;
    if quota == "max" {
        return Ok(None);
    }
    let bad = || {
        parse_error(
            path,
            &format!(
                "{:?} is not \"QUOTA PERIOD\" or \"max PERIOD\"",
                text.trim()
            ),
        )
    };
    let quota = quota.parse::<u64>().map_err(|_| bad())?;
    // The kernel always writes the period; 100 ms is its default if a file ever lacks it.
    let period = match parts.next() {
        Some(p) => p.parse::<u64>().map_err(|_| bad())?,
        None => 100_000,
    };
    if period == 0 {
        return Err(bad());
    }
    Ok(Some(quota as f64 / period as f64))
}

fn kib_field(text: &str, key: &str, path: &Path) -> Result<u64, ResourceError> {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .ok_or_else(|| parse_error(path, &format!("no {key} line")))?;
    let mut parts = line.split_whitespace();
    let value = parts
        .next()
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| parse_error(path, &format!("{key} holds no number")))?;
    match parts.next() {
        Some("kB") | None => Ok(value.saturating_mul(1024)),
        Some(unit) => Err(parse_error(
            path,
            &format!("{key} is in {unit:?}, expected kB"),
        )),
    }
}

fn read(path: &Path) -> Result<String, ResourceError> {
    fs::read_to_string(path).map_err(|source| ResourceError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// `None` when the file does not exist (a cgroup level without that controller).
fn read_optional(path: &Path) -> Result<Option<String>, ResourceError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ResourceError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn parse_error(path: &Path, reason: &str) -> ResourceError {
    ResourceError::Parse {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    }
}
