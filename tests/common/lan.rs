//! Tools of the hostile-LAN tests: raw HTTP/1.1 over a socket the test controls (bound to a
//! chosen source address, so one test can be many clients), a throwaway network namespace with
//! a veth pair (addresses the test gives itself; its traffic never leaves the machine), and the
//! test process's own open-file limit.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

/// A response read off a raw socket.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The `name=value` pair of a `Set-Cookie` header.
    pub fn cookie(&self) -> Option<String> {
        self.header("set-cookie")
            .and_then(|c| c.split(';').next())
            .map(str::to_owned)
    }
}

/// Connects to `dst`, from `src` when given (port chosen by the kernel).
pub fn connect_from(
    src: Option<IpAddr>,
    dst: SocketAddr,
    timeout: Duration,
) -> std::io::Result<TcpStream> {
    let domain = socket2::Domain::for_address(dst);
    let s = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    if let Some(ip) = src {
        s.bind(&SocketAddr::new(ip, 0).into())?;
    }
    s.connect_timeout(&dst.into(), timeout)?;
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    Ok(s)
}

/// Sends one request (`Connection: close`) and reads the whole response.
pub fn request(
    stream: &mut TcpStream,
    method: &str,
    path: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> std::io::Result<RawResponse> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    if let Some(b) = body {
        bytes.extend_from_slice(b);
    }
    stream.write_all(&bytes)?;
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line: {line:?}")))?;
    let mut headers = Vec::new();
    let mut len = None;
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse::<usize>().ok();
            }
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let mut body = Vec::new();
    match len {
        Some(n) => {
            body.resize(n, 0);
            r.read_exact(&mut body)?;
        }
        None => {
            r.read_to_end(&mut body)?;
        }
    }
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}

/// One request on a new connection from `src` to `dst`.
pub fn request_from(
    src: Option<IpAddr>,
    dst: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    timeout: Duration,
) -> std::io::Result<RawResponse> {
    let mut s = connect_from(src, dst, timeout)?;
    request(&mut s, method, path, &dst.to_string(), headers, body)
}

/// Raises this process's soft open-file limit to its hard limit; returns the new soft limit.
pub fn raise_fd_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let l = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: l.maximum,
            maximum: l.maximum,
        },
    );
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// Runs `ip ARGS`, panicking with its output on failure.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace joined to this one by a veth pair; removed (with the pair) on drop.
#[derive(Debug)]
pub struct Netns {
    pub name: String,
    /// This namespace's end of the pair.
    pub host_if: String,
    /// The namespace's end.
    pub ns_if: String,
}

impl Netns {
    /// Creates namespace `name` with loopback up and a veth pair `host_if` <-> `ns_if`, both up.
    pub fn create(name: &str, host_if: &str, ns_if: &str) -> Netns {
        assert!(
            rustix::process::geteuid().is_root(),
            "network namespaces need root (CI runs the tests as root)"
        );
        // A namespace left by an earlier, killed run of this test.
        let _ = Command::new("ip").args(["netns", "del", name]).output();
        let _ = Command::new("ip").args(["link", "del", host_if]).output();
        ip(&["netns", "add", name]);
        let ns = Netns {
            name: name.to_owned(),
            host_if: host_if.to_owned(),
            ns_if: ns_if.to_owned(),
        };
        ip(&[
            "link", "add", host_if, "type", "veth", "peer", "name", ns_if,
        ]);
        ip(&["link", "set", ns_if, "netns", name]);
        ip(&["link", "set", host_if, "up"]);
        ns.exec_ip(&["link", "set", "lo", "up"]);
        ns.exec_ip(&["link", "set", ns_if, "up"]);
        ns
    }

    /// Runs `ip ARGS` inside the namespace.
    pub fn exec_ip(&self, args: &[&str]) {
        let mut all = vec!["netns", "exec", &self.name, "ip"];
        all.extend_from_slice(args);
        ip(&all);
    }

    /// Adds addresses (`addr/prefix`) to the host end, without duplicate-address detection so
    /// they can be bound at once; one `ip -batch` for all of them.
    pub fn add_host_addrs(&self, addrs: &[String]) {
        self.batch(None, &self.host_if, addrs);
    }

    /// Adds addresses to the namespace's end.
    pub fn add_ns_addrs(&self, addrs: &[String]) {
        self.batch(Some(&self.name), &self.ns_if, addrs);
    }

    fn batch(&self, netns: Option<&str>, dev: &str, addrs: &[String]) {
        let script: String = addrs
            .iter()
            .map(|a| {
                let nodad = if a.contains(':') { " nodad" } else { "" };
                format!("address add {a} dev {dev}{nodad}\n")
            })
            .collect();
        let mut cmd = Command::new("ip");
        if let Some(n) = netns {
            cmd.args(["-n", n]);
        }
        let mut child = cmd
            .args(["-batch", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("ip -batch");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(script.as_bytes())
            .expect("write batch");
        let out = child.wait_with_output().expect("ip -batch");
        assert!(
            out.status.success(),
            "ip -batch: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The argument prefix that runs a program inside the namespace: `ip netns exec NAME`.
    pub fn exec_prefix(&self) -> Vec<String> {
        vec!["netns".into(), "exec".into(), self.name.clone()]
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}
