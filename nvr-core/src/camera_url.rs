//! Validation of camera RTSP URLs: the one place that decides what address a camera may have.
//!
//! A camera URL must be `rtsp://host[:port]/path` with no embedded credentials (they belong in
//! the separate, encrypted password field, never in a string that gets logged) and a host that
//! can be a unicast camera. Whether a host *name* may be resolved is a policy decision of the
//! caller (zero egress: no DNS unless allowed); this module only says which kind of host it is.

use std::fmt;
use std::net::IpAddr;

/// The default RTSP port.
pub const DEFAULT_RTSP_PORT: u16 = 554;

/// A validated camera URL.
#[derive(Clone, PartialEq, Eq)]
pub struct CameraUrl {
    url: url::Url,
    host: HostKind,
}

/// How the camera is addressed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostKind {
    /// A literal address: connecting needs no name resolution.
    Ip(IpAddr),
    /// A host name: connecting needs a lookup through the local resolver.
    Name(String),
}

/// Why a camera URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CameraUrlError {
    #[error("camera URL is not a valid URL: {0}")]
    Syntax(String),
    #[error("camera URL scheme {0:?} is not supported: use rtsp://")]
    Scheme(String),
    #[error(
        "camera URL must not contain a username or password; give them as separate fields so \
         they are stored encrypted"
    )]
    EmbeddedCredentials,
    #[error("camera URL has no host")]
    NoHost,
    #[error("camera address {0} cannot be a camera (unspecified, multicast or broadcast)")]
    UnusableAddress(IpAddr),
    #[error("camera URL must not have a fragment (#...)")]
    Fragment,
}

impl CameraUrl {
    /// Parses and validates a camera URL.
    pub fn parse(s: &str) -> Result<Self, CameraUrlError> {
        let url = url::Url::parse(s.trim()).map_err(|e| CameraUrlError::Syntax(e.to_string()))?;
        if url.scheme() != "rtsp" {
            return Err(CameraUrlError::Scheme(url.scheme().to_owned()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(CameraUrlError::EmbeddedCredentials);
        }
        if url.fragment().is_some() {
            return Err(CameraUrlError::Fragment);
        }
        let host = match url.host() {
            None => return Err(CameraUrlError::NoHost),
            Some(url::Host::Ipv4(a)) => HostKind::Ip(IpAddr::V4(a)),
            Some(url::Host::Ipv6(a)) => HostKind::Ip(IpAddr::V6(a)),
            Some(url::Host::Domain("")) => return Err(CameraUrlError::NoHost),
            // `rtsp` is not a "special" scheme to the URL standard, so IPv4 literals arrive here
            // as opaque host strings.
            Some(url::Host::Domain(d)) => match d.parse::<std::net::Ipv4Addr>() {
                Ok(a) => HostKind::Ip(IpAddr::V4(a)),
                Err(_) => HostKind::Name(d.to_owned()),
            },
        };
        if let HostKind::Ip(ip) = host {
            // An IPv4-mapped IPv6 address (`::ffff:239.1.1.1`) is the IPv4 address it maps:
            // judge that one, or a multicast or broadcast group slips through as "IPv6".
            let ip = ip.to_canonical();
            let unusable = ip.is_unspecified()
                || ip.is_multicast()
                || matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
            if unusable {
                return Err(CameraUrlError::UnusableAddress(ip));
            }
        }
        Ok(CameraUrl { url, host })
    }

    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    pub fn url(&self) -> &url::Url {
        &self.url
    }

    pub fn host(&self) -> &HostKind {
        &self.host
    }

    /// The port to connect to (554 unless the URL says otherwise).
    pub fn port(&self) -> u16 {
        self.url.port().unwrap_or(DEFAULT_RTSP_PORT)
    }
}

impl fmt::Display for CameraUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.url.as_str())
    }
}

impl fmt::Debug for CameraUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CameraUrl({})", self.url)
    }
}

/// Checks a camera name: 1 to 64 characters of letters, digits, space, `-`, `_` and `.`, not
/// starting or ending with a space. Names appear in file names of exports and in logs, so they
/// are kept free of path separators and control characters.
pub fn validate_camera_name(name: &str) -> Result<(), String> {
    let n = name.chars().count();
    if n == 0 || n > 64 {
        return Err(format!("camera name must be 1 to 64 characters, got {n}"));
    }
    if name.starts_with(' ') || name.ends_with(' ') {
        return Err("camera name must not start or end with a space".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.')))
    {
        return Err(format!(
            "camera name contains {c:?}: use letters, digits, space, '-', '_' or '.'"
        ));
    }
    if name == "." || name == ".." {
        return Err("camera name must not be '.' or '..'".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Any string: a validated URL or a clear error, never a panic; validated URLs never
        /// carry credentials and are rtsp.
        #[test]
        fn arbitrary_urls_never_panic(s in ".{0,80}", t in "rtsp://[a-z0-9:@./\\[\\]%-]{0,40}") {
            for input in [s, t] {
                if let Ok(u) = CameraUrl::parse(&input) {
                    proptest::prop_assert_eq!(u.url().scheme(), "rtsp");
                    proptest::prop_assert!(u.url().username().is_empty() && u.url().password().is_none());
                }
            }
        }
    }

    #[test]
    fn camera_names() {
        assert!(validate_camera_name("Front door 2").is_ok());
        for bad in ["", " x", "a/b", "..", "a\0b", "x\n", &"a".repeat(65)] {
            assert!(validate_camera_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn accepts_ip_and_name() {
        let u = CameraUrl::parse("rtsp://192.168.1.10/Streaming/Channels/101").expect("ip");
        assert_eq!(u.host(), &HostKind::Ip("192.168.1.10".parse().expect("ip")));
        assert_eq!(u.port(), 554);
        let u = CameraUrl::parse("rtsp://cam-driveway:8554/main").expect("name");
        assert_eq!(u.host(), &HostKind::Name("cam-driveway".into()));
        assert_eq!(u.port(), 8554);
        let u = CameraUrl::parse("rtsp://[::1]:8554/cam1").expect("v6");
        assert!(matches!(u.host(), HostKind::Ip(IpAddr::V6(_))));
    }

    #[test]
    fn refuses_other_schemes() {
        for s in [
            "http://1.2.3.4/",
            "rtsps://1.2.3.4/",
            "file:///etc/passwd",
            "rtmp://x/y",
        ] {
            assert!(
                matches!(CameraUrl::parse(s), Err(CameraUrlError::Scheme(_))),
                "{s}"
            );
        }
    }

    #[test]
    fn refuses_embedded_credentials() {
        for s in [
            "rtsp://admin:secret@1.2.3.4/",
            "rtsp://admin@1.2.3.4/",
            "rtsp://:pw@1.2.3.4/",
        ] {
            assert_eq!(
                CameraUrl::parse(s),
                Err(CameraUrlError::EmbeddedCredentials),
                "{s}"
            );
        }
    }

    #[test]
    fn refuses_unusable_addresses_and_garbage() {
        assert!(matches!(
            CameraUrl::parse("rtsp://0.0.0.0/x"),
            Err(CameraUrlError::UnusableAddress(_))
        ));
        assert!(matches!(
            CameraUrl::parse("rtsp://239.1.1.1/x"),
            Err(CameraUrlError::UnusableAddress(_))
        ));
        assert!(matches!(
            CameraUrl::parse("rtsp://255.255.255.255/x"),
            Err(CameraUrlError::UnusableAddress(_))
        ));
        assert!(matches!(
            CameraUrl::parse("not a url"),
            Err(CameraUrlError::Syntax(_))
        ));
        assert!(CameraUrl::parse("rtsp:///path").is_err());
    }

    #[test]
    fn refuses_ipv4_mapped_unusable_addresses() {
        for s in [
            "rtsp://[::ffff:239.1.1.1]/x",
            "rtsp://[::ffff:0.0.0.0]/x",
            "rtsp://[::ffff:255.255.255.255]/x",
            "rtsp://[::]/x",
            "rtsp://[ff02::1]/x",
        ] {
            assert!(
                matches!(CameraUrl::parse(s), Err(CameraUrlError::UnusableAddress(_))),
                "{s}"
            );
        }
        assert!(CameraUrl::parse("rtsp://[::ffff:192.168.1.9]:554/x").is_ok());
    }
}
