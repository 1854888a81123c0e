//! `nvr doctor`: what the running recorder is connected to, read from the kernel (/proc), next
//! to what it is allowed to connect to: its listening sockets, the camera allowlist, whether the
//! systemd sandbox is in force, and any connection that is not to a camera (there should be
//! none). The result goes to the audit log; the exit code is 1 if anything is unexpected.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use nvr_core::{CameraUrl, HostKind};

/// The file `nvr serve` writes its process id to.
pub const PID_FILE: &str = "nvr.pid";

/// A TCP or UDP socket of the process, from /proc/PID/net/*.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Socket {
    pub proto: &'static str,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Kernel TCP state number (0x0A = LISTEN, 0x01 = ESTABLISHED, 0x02 = SYN_SENT).
    pub state: u8,
}

const TCP_LISTEN: u8 = 0x0A;

/// Parses an address of /proc/net/tcp{,6}: hex IPv4 (little-endian u32) or IPv6 (four
/// little-endian u32 words), a colon, a hex port.
fn parse_addr(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(
            u32::from_str_radix(ip, 16).ok()?.swap_bytes(),
        )),
        32 => {
            let mut b = [0u8; 16];
            for (i, w) in (0..4).map(|i| &ip[i * 8..i * 8 + 8]).enumerate() {
                let v = u32::from_str_radix(w, 16).ok()?.swap_bytes();
                b[i * 4..i * 4 + 4].copy_from_slice(&v.to_be_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// The sockets listed in a /proc/PID/net table that belong to `inodes`.
pub fn parse_table(text: &str, proto: &'static str, inodes: &HashSet<u64>) -> Vec<Socket> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let inode: u64 = f.get(9)?.parse().ok()?;
            if !inodes.contains(&inode) {
                return None;
            }
            Some(Socket {
                proto,
                local: parse_addr(f.get(1)?)?,
                remote: parse_addr(f.get(2)?)?,
                state: u8::from_str_radix(f.get(3)?, 16).ok()?,
            })
        })
        .collect()
}

/// How the sockets look against the allowlist.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Findings {
    pub listening: Vec<SocketAddr>,
    pub to_cameras: Vec<SocketAddr>,
    /// Connections the recorder did not accept and that are not to a camera.
    pub unexpected: Vec<String>,
}

/// Sorts sockets into listening, client connections (accepted on a listening port), camera
/// connections, and everything else.
pub fn classify(sockets: &[Socket], cameras: &[(IpAddr, u16)], camera_names: usize) -> Findings {
    let mut f = Findings::default();
    let listen_ports: HashSet<u16> = sockets
        .iter()
        .filter(|s| s.proto == "tcp" && s.state == TCP_LISTEN)
        .map(|s| s.local.port())
        .collect();
    for s in sockets {
        if s.proto == "tcp" && s.state == TCP_LISTEN {
            f.listening.push(s.local);
        } else if s.proto == "tcp" && listen_ports.contains(&s.local.port()) {
            // A browser connected to us.
        } else if s.proto == "tcp" && s.remote.ip().is_unspecified() {
            // Not connected (yet).
        } else if cameras.contains(&(s.remote.ip(), s.remote.port())) {
            f.to_cameras.push(s.remote);
        } else if camera_names > 0 && s.proto == "tcp" {
            f.unexpected.push(format!(
                "{} connection to {} (not a camera address; a camera named by host may have moved)",
                s.proto, s.remote
            ));
        } else {
            f.unexpected
                .push(format!("{} socket {} -> {}", s.proto, s.local, s.remote));
        }
    }
    f
}

fn sockets_of(pid: u32) -> anyhow::Result<Vec<Socket>> {
    let mut inodes = HashSet::new();
    let fd_dir = format!("/proc/{pid}/fd");
    for e in
        std::fs::read_dir(&fd_dir).with_context(|| format!("reading {fd_dir} (run as root?)"))?
    {
        if let Ok(target) = std::fs::read_link(e?.path())
            && let Some(inode) = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse().ok())
        {
            inodes.insert(inode);
        }
    }
    let mut out = Vec::new();
    for (file, proto) in [
        ("tcp", "tcp"),
        ("tcp6", "tcp"),
        ("udp", "udp"),
        ("udp6", "udp"),
    ] {
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{file}")) {
            out.extend(parse_table(&text, proto, &inodes));
        }
    }
    Ok(out)
}

/// Describes the sandbox the process runs in, as far as /proc and systemctl tell.
fn sandbox(pid: u32) -> Vec<String> {
    let mut out = Vec::new();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    for key in ["NoNewPrivs", "Seccomp", "CapEff"] {
        if let Some(v) = status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}:")))
        {
            out.push(format!("{key}: {}", v.trim()));
        }
    }
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let unit = cgroup.lines().find_map(|l| {
        l.rsplit('/')
            .next()
            .filter(|u| u.ends_with(".service"))
            .map(str::to_owned)
    });
    match unit {
        Some(u) => {
            out.push(format!("systemd unit: {u}"));
            if let Ok(o) = std::process::Command::new("systemctl")
                .args(["show", &u, "-p", "IPAddressDeny", "-p", "IPAddressAllow", "-p", "RestrictAddressFamilies", "-p", "ProtectSystem", "-p", "DynamicUser"])
                .output()
            {
                out.extend(String::from_utf8_lossy(&o.stdout).lines().map(str::to_owned));
            }
        }
        None => out.push("not running under systemd: the kernel-level IP filter of config/nvr.service is not in force".into()),
    }
    out
}

pub fn doctor(dir: &Path) -> anyhow::Result<ExitCode> {
    let store = crate::commands::open(dir)?;
    let mut cameras = Vec::new();
    let mut names = 0;
    println!("camera allowlist (the only outbound destinations):");
    // Every stream of an enabled camera (its main stream, and its sub-stream if it has one).
    for c in store.cameras()?.into_iter().filter(|c| c.enabled) {
        for stream in c.streams() {
            let Some(url) = c.stream_url(stream) else {
                continue;
            };
            let what = match stream {
                nvr_core::Stream::Main => c.name.clone(),
                s => format!("{}, {s} stream", c.name),
            };
            match CameraUrl::parse(url) {
                Ok(u) => {
                    match u.host() {
                        HostKind::Ip(ip) => cameras.push((*ip, u.port())),
                        HostKind::Name(_) => names += 1,
                    }
                    println!(
                        "  {}:{}  ({what})",
                        u.url().host_str().unwrap_or("?"),
                        u.port(),
                    );
                }
                Err(e) => println!("  invalid URL of camera {what}: {e}"),
            }
        }
    }
    let pid = std::fs::read_to_string(dir.join(PID_FILE))
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains("serve"))
                .unwrap_or(false)
        });
    let Some(pid) = pid else {
        println!(
            "the recorder is not running (no live {PID_FILE} in {})",
            dir.display()
        );
        store.audit(
            &nvr_app::Actor::cli().audit_name(),
            "doctor",
            "recorder",
            serde_json::json!({"running": false}),
        );
        return Ok(ExitCode::SUCCESS);
    };
    let sockets = sockets_of(pid)?;
    let f = classify(&sockets, &cameras, names);
    println!("recorder process {pid}");
    println!("listening sockets:");
    for l in &f.listening {
        println!(
            "  tcp {l}{}",
            if l.ip().is_loopback() {
                "  (loopback only)"
            } else {
                ""
            }
        );
    }
    println!("connections to cameras: {}", f.to_cameras.len());
    for c in &f.to_cameras {
        println!("  {c}");
    }
    println!("other outbound connections: {}", f.unexpected.len());
    for u in &f.unexpected {
        println!("  UNEXPECTED {u}");
    }
    println!("sandbox:");
    let sb = sandbox(pid);
    for s in &sb {
        println!("  {s}");
    }
    store.audit(
        &nvr_app::Actor::cli().audit_name(),
        "doctor",
        "recorder",
        serde_json::json!({
            "listening": f.listening.iter().map(|l| l.to_string()).collect::<Vec<_>>(),
            "camera_connections": f.to_cameras.len(),
            "unexpected": f.unexpected,
            "sandbox": sb,
        }),
    );
    Ok(if f.unexpected.is_empty() && f.listening.len() <= 1 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Two lines of /proc/net/tcp: a listener on 127.0.0.1:8080 and a connection from
    // 127.0.0.1:40000 to 127.0.0.1:8554 (a camera).
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0 100 0 0 10 0
   1: 0100007F:9C40 0100007F:2166 01 00000000:00000000 00:00000000 00000000     0        0 222 1 0 20 4 30 10 -1
   2: 0100007F:9C41 08080808:0035 01 00000000:00000000 00:00000000 00000000     0        0 333 1 0 20 4 30 10 -1
   3: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 444 1 0 20 4 30 10 -1";

    #[test]
    fn parses_proc_net_and_flags_what_is_not_a_camera() {
        let inodes: HashSet<u64> = [111, 222, 333, 444].into();
        let s = parse_table(TCP, "tcp", &inodes);
        assert_eq!(s.len(), 4);
        assert_eq!(s[0].local, "127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(s[1].remote, "127.0.0.1:8550".parse().expect("addr"));
        let cameras = [("127.0.0.1".parse().expect("ip"), 8550)];
        let f = classify(&s, &cameras, 0);
        assert_eq!(
            f.listening,
            vec!["127.0.0.1:8080".parse::<SocketAddr>().expect("addr")]
        );
        assert_eq!(f.to_cameras.len(), 1);
        assert_eq!(f.unexpected.len(), 1, "{f:?}");
        assert!(f.unexpected[0].contains("8.8.8.8:53"), "{f:?}");
        // Sockets of other processes are ignored.
        assert!(parse_table(TCP, "tcp", &[999].into()).is_empty());
    }

    #[test]
    fn parses_ipv6() {
        assert_eq!(
            parse_addr("00000000000000000000000001000000:1F90"),
            Some("[::1]:8080".parse().expect("addr"))
        );
    }
}
