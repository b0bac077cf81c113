//! The machine a recording was made on, as the OS describes it: a replay on
//! a classroom laptop must say that its figures came from elsewhere (16
//! cores at home are not the laptop's 4).

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Logical cores.
    pub cores: u32,
    /// The CPU's model name, from /proc/cpuinfo.
    pub cpu: Option<String>,
    /// The OS's name, from /etc/os-release.
    pub os: Option<String>,
    /// The kernel, from /proc/sys/kernel: "Linux 6.5.0".
    pub kernel: Option<String>,
}

impl Machine {
    /// This machine; what cannot be read is left out.
    pub fn here(cores: u32) -> Machine {
        let read = |path: &str| std::fs::read_to_string(path).ok();
        let kernel = read("/proc/sys/kernel/ostype")
            .zip(read("/proc/sys/kernel/osrelease"))
            .map(|(os, release)| format!("{} {}", os.trim(), release.trim()));
        Machine {
            cores,
            cpu: read("/proc/cpuinfo").and_then(|text| cpu_model(&text)),
            os: read("/etc/os-release").and_then(|text| os_name(&text)),
            kernel,
        }
    }

    /// "16 cores · AMD Ryzen 9 5950X · Ubuntu 22.04.4 LTS"
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("{} core{}", self.cores, if self.cores == 1 { "" } else { "s" })];
        parts.extend(self.cpu.clone());
        parts.extend(self.os.clone().or_else(|| self.kernel.clone()));
        parts.join(" · ")
    }
}

/// The first "model name" of /proc/cpuinfo (x86), else its "Hardware" or "Model" line (ARM).
fn cpu_model(cpuinfo: &str) -> Option<String> {
    ["model name", "Hardware", "Model"].iter().find_map(|key| {
        cpuinfo.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            (k.trim() == *key && !v.trim().is_empty()).then(|| v.trim().to_owned())
        })
    })
}

/// `PRETTY_NAME` of /etc/os-release, without its quotes.
fn os_name(os_release: &str) -> Option<String> {
    os_release.lines().find_map(|line| {
        let value = line.strip_prefix("PRETTY_NAME=")?;
        Some(value.trim().trim_matches('"').to_owned()).filter(|v| !v.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_and_os_are_read_from_their_files() {
        let cpuinfo =
            "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD Ryzen 9 5950X 16-Core Processor\n";
        assert_eq!(cpu_model(cpuinfo).as_deref(), Some("AMD Ryzen 9 5950X 16-Core Processor"));
        assert_eq!(cpu_model("processor : 0\n"), None);
        let os = "NAME=\"Ubuntu\"\nPRETTY_NAME=\"Ubuntu 22.04.4 LTS\"\n";
        assert_eq!(os_name(os).as_deref(), Some("Ubuntu 22.04.4 LTS"));
        let m = Machine { cores: 16, cpu: Some("X".into()), os: None, kernel: Some("Linux 6".into()) };
        assert_eq!(m.describe(), "16 cores · X · Linux 6");
    }
}
