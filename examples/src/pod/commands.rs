//! The `vnf-pod` commands: `run`, `up`, `down` and `status`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use serde::Serialize;

use super::builtin::{BuiltinLinks, builtin_spec};
use super::place::{Placed, Placement};
use super::spec::{PodSpec, check_pod_name};
use super::state::{Mode, PodDir, PodState, list_pods};
use super::teardown::{STOP_GRACE, TeardownContext, process_start_ticks, run_teardown};
use super::workload::{Launch, spawn};
use super::{PodError, signals};

/// The source of the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecSource {
    /// A JSON file.
    File(PathBuf),
    /// The built-in spec, for a pod of this name.
    Builtin(String),
}

/// Reads the spec, and the host links the built-in spec needs.
pub fn load_spec(source: &SpecSource) -> Result<(PodSpec, Option<BuiltinLinks>), PodError> {
    match source {
        SpecSource::File(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| PodError::ReadSpec {
                path: path.clone(),
                source,
            })?;
            let spec = PodSpec::from_json(&text).map_err(|source| PodError::Spec {
                origin: path.display().to_string(),
                source,
            })?;
            Ok((spec, None))
        }
        SpecSource::Builtin(name) => {
            let (spec, links) = builtin_spec(name).map_err(|source| PodError::Spec {
                origin: "built-in".to_owned(),
                source,
            })?;
            Ok((spec, Some(links)))
        }
    }
}

/// Fails unless the process runs as root.
pub fn require_root() -> Result<(), PodError> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(PodError::NotRoot)
    }
}

/// `vnf-pod run`: places the pod, prints the placement, runs the command and tears everything
/// down when it ends or on SIGINT or SIGTERM. Returns the command's exit status.
pub fn run(source: &SpecSource, command: Vec<String>) -> Result<ExitStatus, PodError> {
    let (mut spec, links) = load_spec(source)?;
    if !command.is_empty() {
        spec.command = command;
    }
    if spec.command.is_empty() {
        return Err(PodError::step(
            "start command",
            spec.name.as_str(),
            "no command: give one after `--` or in the spec's \"command\"",
        ));
    }
    require_root()?;
    signals::install().map_err(|error| PodError::step("install signal handlers", "", error))?;
    let mut placement = Placement::start(spec, Mode::Run, links)?;
    let placed = placement.run_steps()?;
    let outcome = print_placed(&placed).and_then(|()| run_workload(&mut placement, &placed));
    let teardown = placement.teardown();
    let status = outcome?;
    teardown?;
    Ok(status)
}

/// Starts the command, waits for it, and forwards SIGINT or SIGTERM to it.
fn run_workload(placement: &mut Placement, placed: &Placed) -> Result<ExitStatus, PodError> {
    let mut child = start_command(placement, placed, None)?;
    wait_forwarding_signals(&mut child)
}

fn start_command(
    placement: &mut Placement,
    placed: &Placed,
    log: Option<PathBuf>,
) -> Result<Child, PodError> {
    let netns = placement
        .netns()
        .expect("the namespace exists after placement");
    let launch = Launch {
        command: &placement.spec().command,
        netns,
        cpus: placement.cpus(),
        cgroup: placement.cgroup(),
        env: placement.workload_env(placed),
        detached_log: log,
    };
    let child = spawn(&launch)?;
    let pid = i32::try_from(child.id()).expect("pids fit in i32");
    let start_ticks = process_start_ticks(pid).unwrap_or(0);
    placement.record_workload(pid, start_ticks)?;
    Ok(child)
}

fn wait_forwarding_signals(child: &mut Child) -> Result<ExitStatus, PodError> {
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pids fit in i32"));
    let mut forwarded: Option<Instant> = None;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) => {}
            Err(error) => return Err(PodError::step("wait for command", pid.to_string(), error)),
        }
        match (signals::received(), forwarded) {
            (Some(received), None) => {
                tracing::info!(signal = received.as_str(), %pid, "forwarding signal to the command");
                let _ = signal::kill(pid, received);
                forwarded = Some(Instant::now());
            }
            (Some(_), Some(since)) if since.elapsed() > STOP_GRACE => {
                tracing::warn!(%pid, "command still running after the grace period; killing it");
                let _ = signal::kill(pid, Signal::SIGKILL);
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `vnf-pod up`: places the pod, starts its command in the background (output in the pod
/// directory's `workload.log`), prints the placement and leaves it all in place.
pub fn up(source: &SpecSource) -> Result<Placed, PodError> {
    let (spec, links) = load_spec(source)?;
    spec.check_for_up().map_err(|source_error| PodError::Spec {
        origin: match source {
            SpecSource::File(path) => path.display().to_string(),
            SpecSource::Builtin(_) => "built-in".to_owned(),
        },
        source: source_error,
    })?;
    require_root()?;
    signals::install().map_err(|error| PodError::step("install signal handlers", "", error))?;
    let mut placement = Placement::start(spec, Mode::Up, links)?;
    let placed = placement.run_steps()?;
    if !placement.spec().command.is_empty() {
        let log = placement.dir().path().join("workload.log");
        if let Err(error) = start_command(&mut placement, &placed, Some(log)) {
            let _ = placement.teardown();
            return Err(error);
        }
    }
    print_placed(&placed)?;
    Ok(placed)
}

/// `vnf-pod down NAME`: tears down a pod from its state file, also after a crash.
pub fn down(name: &str) -> Result<(), PodError> {
    require_root()?;
    check_pod_name(name).map_err(|source| PodError::Spec {
        origin: "argument".to_owned(),
        source,
    })?;
    let dir = PodDir::of(name);
    if !dir.exists() {
        return Err(PodError::NotFound {
            name: name.to_owned(),
            dir: dir.path().to_owned(),
        });
    }
    if !dir.state_file().exists() {
        // Killed before the first state write: only the directory exists.
        return dir.remove();
    }
    let state = dir.read_state()?;
    if stop_running_placer(&state, &dir) {
        return Ok(());
    }
    let spec = PodSpec::from_json(&state.spec.to_string()).map_err(|source| PodError::Spec {
        origin: dir.state_file().display().to_string(),
        source,
    })?;
    let cx = TeardownContext {
        spec: &spec,
        dir: &dir,
        attachments: None,
    };
    run_teardown(&state.teardown, &cx)
}

/// Asks a live `vnf-pod run` that owns the pod to tear it down itself (SIGTERM) and waits
/// for its directory to go. Returns true when it went.
fn stop_running_placer(state: &PodState, dir: &PodDir) -> bool {
    let Ok(pid) = i32::try_from(state.placer_pid) else {
        return false;
    };
    if state.mode != Mode::Run || pid == std::process::id() as i32 || !is_vnf_pod(pid) {
        return false;
    }
    let _ = signal::kill(Pid::from_raw(pid), Signal::SIGTERM);
    let deadline = Instant::now() + STOP_GRACE * 3;
    while Instant::now() < deadline {
        if !dir.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Returns true when `pid` runs this same program.
fn is_vnf_pod(pid: i32) -> bool {
    let exe = |path: &Path| std::fs::read_link(path).ok();
    let theirs = exe(&Path::new("/proc").join(pid.to_string()).join("exe"));
    theirs.is_some() && theirs == exe(Path::new("/proc/self/exe"))
}

/// One pod as `vnf-pod status` reports it.
#[derive(Debug, Serialize)]
pub struct PodStatus {
    /// Pod name.
    pub name: String,
    /// `run` or `up`; absent when the state could not be read.
    pub mode: Option<Mode>,
    /// True when the process that placed the pod still runs.
    pub placer_running: bool,
    /// True when the pod's command still runs.
    pub workload_running: bool,
    /// The placement as printed; absent while it is unfinished.
    pub placed: Option<serde_json::Value>,
    /// The error that kept the state from being read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `vnf-pod status [NAME]`: the state of one pod or of every pod.
pub fn status(name: Option<&str>) -> Result<Vec<PodStatus>, PodError> {
    let names = match name {
        Some(name) => {
            let dir = PodDir::of(name);
            if !dir.exists() {
                return Err(PodError::NotFound {
                    name: name.to_owned(),
                    dir: dir.path().to_owned(),
                });
            }
            vec![name.to_owned()]
        }
        None => list_pods()?,
    };
    Ok(names.iter().map(|name| pod_status(name)).collect())
}

fn pod_status(name: &str) -> PodStatus {
    match PodDir::of(name).read_state() {
        Ok(state) => {
            let workload_running = state.teardown.iter().any(|undo| match undo {
                super::teardown::Undo::StopWorkload { pid, start_ticks } => {
                    process_start_ticks(*pid) == Some(*start_ticks)
                }
                _ => false,
            });
            PodStatus {
                name: name.to_owned(),
                mode: Some(state.mode),
                placer_running: i32::try_from(state.placer_pid).is_ok_and(is_vnf_pod),
                workload_running,
                placed: state.placed,
                error: None,
            }
        }
        Err(error) => PodStatus {
            name: name.to_owned(),
            mode: None,
            placer_running: false,
            workload_running: false,
            placed: None,
            error: Some(super::error::error_chain(&error)),
        },
    }
}

/// Prints the placement as one line of JSON and flushes it before the command can write.
fn print_placed(placed: &Placed) -> Result<(), PodError> {
    let line = serde_json::to_string(placed).expect("placement serialises");
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .map_err(|error| PodError::step("print placement", "stdout", error))
}
