//! The egress policy: the only outbound connections the recorder opens are RTSP sessions to the
//! configured address of each camera (and, while an admin tests one, to the camera being
//! added). Every connect is checked here first; a camera given by host name is resolved only
//! when the configuration allows it, through the system resolver, and the answer is logged.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};

use nvr_core::{CameraUrl, HostKind};

use crate::error::{CameraErrorKind, IngestError};

/// An allowed destination: the host as written in the camera URL, and the port.
type Destination = (String, u16);

/// Which camera addresses may be connected to.
#[derive(Debug, Default)]
pub struct EgressPolicy {
    /// Configured cameras' destinations.
    cameras: RwLock<Vec<Destination>>,
    /// Destinations an admin is testing right now (with a count of tests in progress).
    probes: RwLock<HashMap<Destination, usize>>,
    allow_host_names: bool,
}

fn destination(url: &CameraUrl) -> Destination {
    let host = match url.host() {
        HostKind::Ip(ip) => ip.to_string(),
        HostKind::Name(n) => n.to_ascii_lowercase(),
    };
    (host, url.port())
}

fn refused(message: String) -> IngestError {
    IngestError::new(CameraErrorKind::Policy, message)
}

impl EgressPolicy {
    pub fn new(allow_host_names: bool) -> Arc<Self> {
        Arc::new(EgressPolicy {
            allow_host_names,
            ..Default::default()
        })
    }

    pub fn allow_host_names(&self) -> bool {
        self.allow_host_names
    }

    /// Replaces the list of configured camera URLs.
    pub fn set_cameras<'a>(&self, urls: impl IntoIterator<Item = &'a CameraUrl>) {
        let list = urls.into_iter().map(destination).collect();
        *self.cameras.write().unwrap_or_else(|p| p.into_inner()) = list;
    }

    /// The configured destinations, for `nvr doctor` and the logs.
    pub fn cameras(&self) -> Vec<(String, u16)> {
        self.cameras
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Allows `url` while the returned guard lives (an admin testing a camera before adding it).
    pub fn allow_probe(self: &Arc<Self>, url: &CameraUrl) -> ProbeAllowance {
        let d = destination(url);
        *self
            .probes
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(d.clone())
            .or_insert(0) += 1;
        ProbeAllowance {
            policy: self.clone(),
            destination: d,
        }
    }

    /// Refuses a destination that is neither a configured camera nor under test.
    pub fn check(&self, url: &CameraUrl) -> Result<(), IngestError> {
        let d = destination(url);
        let known = self
            .cameras
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&d)
            || self
                .probes
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(&d);
        if known {
            Ok(())
        } else {
            Err(refused(format!(
                "{}:{} is not a configured camera address; refusing to connect",
                d.0, d.1
            )))
        }
    }

    /// The socket address to connect to: the literal address, or the host name resolved
    /// through the system resolver when allowed (logged). Never resolves an IP literal.
    pub async fn resolve(&self, url: &CameraUrl) -> Result<SocketAddr, IngestError> {
        self.check(url)?;
        match url.host() {
            HostKind::Ip(ip) => Ok(SocketAddr::new(*ip, url.port())),
            HostKind::Name(name) => {
                if !self.allow_host_names {
                    return Err(refused(format!(
                        "camera host {name:?} is a name, and resolving names is disabled \
                         (cameras.allow_host_names = false): use the camera's IP address"
                    )));
                }
                let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), url.port()))
                    .await
                    .map_err(|e| {
                        IngestError::new(
                            CameraErrorKind::Unreachable,
                            format!("resolving camera host {name:?} failed: {e}"),
                        )
                    })?
                    .collect();
                let chosen = addrs.first().copied().ok_or_else(|| {
                    IngestError::new(
                        CameraErrorKind::Unreachable,
                        format!("camera host {name:?} has no address"),
                    )
                })?;
                tracing::info!(host = %name, addresses = ?addrs, chosen = %chosen, "resolved camera host name");
                Ok(chosen)
            }
        }
    }
}

/// Keeps a probe destination allowed until dropped.
#[derive(Debug)]
pub struct ProbeAllowance {
    policy: Arc<EgressPolicy>,
    destination: Destination,
}

impl Drop for ProbeAllowance {
    fn drop(&mut self) {
        let mut probes = self
            .policy
            .probes
            .write()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = probes.get_mut(&self.destination) {
            *n -= 1;
            if *n == 0 {
                probes.remove(&self.destination);
            }
        }
    }
}

/// Whether `url` points at the same host and port as the camera's own address (`expected_ip`
/// is the address actually connected to, when the camera was given by name).
pub fn same_destination(url: &url::Url, camera: &CameraUrl, expected_ip: IpAddr) -> bool {
    let port_ok = url
        .port()
        .unwrap_or(nvr_core::camera_url::DEFAULT_RTSP_PORT)
        == camera.port();
    let host = url
        .host_str()
        .unwrap_or("")
        .trim_matches(['[', ']'])
        .to_ascii_lowercase();
    let host_ok = match camera.host() {
        HostKind::Ip(ip) => host == ip.to_string(),
        HostKind::Name(n) => host == n.to_ascii_lowercase() || host == expected_ip.to_string(),
    };
    port_ok && host_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> CameraUrl {
        CameraUrl::parse(s).expect("url")
    }

    #[tokio::test]
    async fn only_configured_cameras_and_probes_pass() {
        let p = EgressPolicy::new(false);
        p.set_cameras([&u("rtsp://10.0.0.5/a"), &u("rtsp://10.0.0.6:8554/b")]);
        assert!(p.check(&u("rtsp://10.0.0.5/other-path")).is_ok());
        assert!(p.check(&u("rtsp://10.0.0.6:8554/x")).is_ok());
        assert!(p.check(&u("rtsp://10.0.0.6/x")).is_err(), "other port");
        assert!(p.check(&u("rtsp://10.0.0.7/x")).is_err());
        {
            let _g = p.allow_probe(&u("rtsp://10.0.0.7/x"));
            assert!(p.check(&u("rtsp://10.0.0.7/x")).is_ok());
        }
        assert!(
            p.check(&u("rtsp://10.0.0.7/x")).is_err(),
            "allowance ends with the probe"
        );
        assert_eq!(
            p.resolve(&u("rtsp://10.0.0.5/a")).await.expect("ip"),
            "10.0.0.5:554".parse().expect("addr")
        );
    }

    #[tokio::test]
    async fn names_are_refused_unless_allowed() {
        let p = EgressPolicy::new(false);
        p.set_cameras([&u("rtsp://cam.example/a")]);
        let e = p
            .resolve(&u("rtsp://cam.example/a"))
            .await
            .expect_err("no DNS");
        assert_eq!(e.kind, CameraErrorKind::Policy);
        let p = EgressPolicy::new(true);
        p.set_cameras([&u("rtsp://localhost:8554/a")]);
        let a = p
            .resolve(&u("rtsp://localhost:8554/a"))
            .await
            .expect("resolves");
        assert!(a.ip().is_loopback());
    }

    #[test]
    fn content_base_on_another_host_is_not_the_same_destination() {
        let cam = u("rtsp://127.0.0.1:8554/cam1");
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let ok = url::Url::parse("rtsp://127.0.0.1:8554/cam1/trackID=0").expect("url");
        let other = url::Url::parse("rtsp://127.0.0.2:8554/cam1/trackID=0").expect("url");
        let port = url::Url::parse("rtsp://127.0.0.1:9/cam1").expect("url");
        assert!(same_destination(&ok, &cam, ip));
        assert!(!same_destination(&other, &cam, ip));
        assert!(!same_destination(&port, &cam, ip));
    }
}
