//! The VM tier guest. It boots Debian's kernel under `qemu-system-x86_64 -accel tcg -M q35 -cpu
//! max` with an igb SR-IOV NIC, an emulated IOMMU, nested KVM and the workspace shared over 9p.
//! It runs a script as root and reads its output and exit status back from the serial console.

mod initramfs;
mod kernel;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How to boot the guest.
#[derive(Debug, Clone)]
pub struct GuestConfig {
    /// Workspace root, shared read-only at the same path.
    pub workspace: PathBuf,
    /// Cargo's target directory, shared too when it is outside the workspace.
    pub target_dir: PathBuf,
    /// Directories put in front of the guest's PATH.
    pub extra_path: Vec<PathBuf>,
    /// Host files copied into the guest: (host path, guest path).
    pub copies: Vec<(PathBuf, PathBuf)>,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// Time after which the guest is killed.
    pub timeout: Duration,
    /// Copy the script's output to our stdout as it arrives.
    pub echo: bool,
}

/// Output and exit status returned by the guest.
#[derive(Debug)]
pub struct Outcome {
    /// Everything the script printed (after the guest was ready).
    pub output: String,
    /// The script's exit status, or `None` when the guest never reported one.
    pub exit_status: Option<i32>,
}

const READY: &str = "TELCO-GUEST-READY";
const EXIT: &str = "TELCO-GUEST-EXIT ";

/// Boots the guest and runs `script`, also packing the shared libraries of `library_users`
/// (executables the script runs from the 9p share).
pub fn boot_and_run_with_libraries(
    config: &GuestConfig,
    script: &str,
    library_users: &[PathBuf],
) -> Result<Outcome> {
    check_qemu()?;
    let kernel = kernel::find_kernel()?;
    let mut shares = vec![("ws".to_owned(), config.workspace.clone())];
    if !config.target_dir.starts_with(&config.workspace) && config.target_dir.exists() {
        shares.push(("target".to_owned(), config.target_dir.clone()));
    }
    let work = config.target_dir.join("vm");
    let image = work.join("initramfs.cpio");
    let contents = initramfs::Contents {
        kernel: &kernel,
        shares: &shares,
        extra_path: &config.extra_path,
        copies: &config.copies,
        library_users,
        script,
    };
    initramfs::build(&contents, &work.join("initramfs"), &image)?;
    run_qemu(config, &kernel.image, &image, &shares)
}

fn check_qemu() -> Result<()> {
    let output = Command::new("qemu-system-x86_64")
        .args(["-device", "help"])
        .output();
    match output {
        Ok(output) if String::from_utf8_lossy(&output.stdout).contains("\"igb\"") => Ok(()),
        Ok(_) => bail!(
            "qemu-system-x86_64 has no igb device; install QEMU 8.0 or later \
             (Debian: qemu-system-x86 from bookworm-backports; scripts/setup.sh does)"
        ),
        Err(_) => bail!(
            "qemu-system-x86_64 not found; install qemu-system-x86 from bookworm-backports \
             (scripts/setup.sh does)"
        ),
    }
}

fn qemu_command(
    config: &GuestConfig,
    kernel: &std::path::Path,
    initrd: &std::path::Path,
    shares: &[(String, PathBuf)],
) -> Command {
    let mut command = Command::new("qemu-system-x86_64");
    command
        .args([
            "-accel",
            "tcg,thread=multi",
            "-M",
            "q35",
            "-cpu",
            "max",
            "-smp",
            "2",
        ])
        .args(["-m", &config.memory_mib.to_string()])
        .args(["-display", "none", "-monitor", "none", "-serial", "stdio"])
        .args(["-no-reboot", "-nic", "none"])
        // The IOMMU must come before the NIC so the VFs get IOMMU groups for vfio-pci.
        .args(["-device", "intel-iommu"])
        .args([
            "-device",
            "pcie-root-port,id=rp1,chassis=1,slot=1,bus=pcie.0",
        ])
        .args(["-device", "igb,bus=rp1"])
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(initrd)
        .args([
            "-append",
            "console=ttyS0 quiet loglevel=3 panic=-1 intel_iommu=on iommu=pt rdinit=/init",
        ]);
    for (tag, path) in shares {
        command.args([
            "-virtfs",
            &format!(
                "local,path={},mount_tag={tag},security_model=none,readonly=on,multidevs=remap",
                path.display()
            ),
        ]);
    }
    command
}

fn run_qemu(
    config: &GuestConfig,
    kernel: &std::path::Path,
    initrd: &std::path::Path,
    shares: &[(String, PathBuf)],
) -> Result<Outcome> {
    let started = Instant::now();
    let mut child = qemu_command(config, kernel, initrd, shares)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("failed to start qemu-system-x86_64")?;
    let (sender, receiver) = mpsc::channel::<String>();
    let stdout = child.stdout.take().context("qemu stdout")?;
    let stderr = child.stderr.take().context("qemu stderr")?;
    let err_sender = sender.clone();
    std::thread::spawn(move || forward_lines(stdout, &sender));
    std::thread::spawn(move || forward_lines(stderr, &err_sender));

    let mut before_ready = String::new();
    let mut output = String::new();
    let mut ready = false;
    let mut exit_status = None;
    let deadline = started + config.timeout;
    loop {
        let now = Instant::now();
        if now >= deadline {
            let _ = child.kill();
            break;
        }
        match receiver.recv_timeout((deadline - now).min(Duration::from_millis(500))) {
            Ok(line) => {
                let line = line.trim_end_matches(['\r', '\n']).to_owned();
                if !ready {
                    if line.contains(READY) {
                        ready = true;
                        println!(
                            "[vm] guest ready after {:.1} s: {}",
                            started.elapsed().as_secs_f64(),
                            line.split(READY).nth(1).unwrap_or("").trim()
                        );
                    } else {
                        before_ready.push_str(&line);
                        before_ready.push('\n');
                    }
                    continue;
                }
                if let Some(status) = line.split(EXIT).nth(1) {
                    exit_status = status.trim().parse::<i32>().ok();
                    continue;
                }
                if config.echo {
                    let mut stdout = std::io::stdout().lock();
                    let _ = writeln!(stdout, "{line}");
                    let _ = stdout.flush();
                }
                output.push_str(&line);
                output.push('\n');
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Some(_status) = child.try_wait()? {
                    // Drain what is left, then stop.
                    while let Ok(line) = receiver.recv_timeout(Duration::from_millis(200)) {
                        let line = line.trim_end_matches(['\r', '\n']).to_owned();
                        if let Some(status) = line.split(EXIT).nth(1) {
                            exit_status = status.trim().parse::<i32>().ok();
                        } else if ready {
                            if config.echo {
                                println!("{line}");
                            }
                            output.push_str(&line);
                            output.push('\n');
                        } else {
                            before_ready.push_str(&line);
                            before_ready.push('\n');
                        }
                    }
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = child.wait();
                break;
            }
        }
    }
    let _ = child.wait();
    let elapsed = started.elapsed().as_secs_f64();
    if !ready {
        println!("[vm] the guest never became ready; its console said:\n{before_ready}");
    }
    if exit_status.is_none() {
        if Instant::now() >= deadline {
            println!(
                "[vm] stopped the guest after {} s (timeout)",
                config.timeout.as_secs()
            );
        } else {
            println!("[vm] the guest ended after {elapsed:.1} s without an exit status");
        }
    } else {
        println!("[vm] guest finished after {elapsed:.1} s");
    }
    Ok(Outcome {
        output,
        exit_status,
    })
}

fn forward_lines(stream: impl std::io::Read, sender: &mpsc::Sender<String>) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
        if sender
            .send(String::from_utf8_lossy(&line).into_owned())
            .is_err()
        {
            return;
        }
        line.clear();
    }
}

/// Returns the output between the begin and end markers of test binary `index`.
pub fn section(output: &str, index: usize) -> Option<&str> {
    let begin = format!("TELCO-BINARY-BEGIN {index}\n");
    let end = format!("TELCO-BINARY-END {index} ");
    let start = output.find(&begin)? + begin.len();
    let length = output[start..].find(&end)?;
    Some(&output[start..start + length])
}

/// Quotes `text` for a POSIX shell.
pub fn shell_quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-=:,+@%".contains(&b))
    {
        return text.to_owned();
    }
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// Turns a command and its arguments into one shell line.
pub fn shell_command(command: &[String]) -> String {
    let words: Vec<String> = command.iter().map(|word| shell_quote(word)).collect();
    format!("{}\n", words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(shell_quote("/usr/bin/ip"), "/usr/bin/ip");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn section_finds_one_binary_output() {
        let output = "x\nTELCO-BINARY-BEGIN 0\nline\nTELCO-BINARY-END 0 0\nTELCO-BINARY-BEGIN 1\nother\nTELCO-BINARY-END 1 101\n";
        assert_eq!(section(output, 0), Some("line\n"));
        assert_eq!(section(output, 1), Some("other\n"));
        assert_eq!(section(output, 2), None);
    }
}
