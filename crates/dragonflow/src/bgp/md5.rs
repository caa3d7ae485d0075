//! TCP MD5 signatures (RFC 2385) for a BGP peer that asks for them (`auth_type` md5):
//! Linux's `TCP_MD5SIG` socket option, set on the socket before it connects. Neither
//! socket2 nor tokio wraps it, so the option's structure is laid out here and handed to
//! libc's `setsockopt`.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;

/// The kernel's longest key (`TCP_MD5SIG_MAXKEYLEN`).
pub const MAX_KEY: usize = 80;

/// `struct tcp_md5sig` (linux/tcp.h): the peer's address as a `sockaddr_storage`, then
/// flags, prefix length, key length, interface index (all unused without
/// `TCP_MD5SIG_EXT`), then the key.
#[repr(C, align(8))]
struct TcpMd5Sig {
    addr: [u8; 128],
    flags: u8,
    prefixlen: u8,
    keylen: u16,
    ifindex: i32,
    key: [u8; MAX_KEY],
}

/// The `sockaddr_in`/`sockaddr_in6` of `peer` in the bytes of a `sockaddr_storage`.
fn sockaddr(peer: SocketAddr) -> [u8; 128] {
    let mut a = [0u8; 128];
    match peer {
        SocketAddr::V4(p) => {
            a[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
            a[2..4].copy_from_slice(&p.port().to_be_bytes());
            a[4..8].copy_from_slice(&p.ip().octets());
        }
        SocketAddr::V6(p) => {
            a[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
            a[2..4].copy_from_slice(&p.port().to_be_bytes());
            a[4..8].copy_from_slice(&p.flowinfo().to_be_bytes());
            a[8..24].copy_from_slice(&p.ip().octets());
            a[24..28].copy_from_slice(&p.scope_id().to_ne_bytes());
        }
    }
    a
}

/// Signs every segment `socket` exchanges with `peer` with `key` (at most [`MAX_KEY`]
/// bytes; the kernel then also drops the peer's unsigned or wrongly signed segments).
#[allow(unsafe_code)] // setsockopt has no safe binding for this option; see SAFETY.
pub fn sign(socket: &impl AsRawFd, peer: SocketAddr, key: &[u8]) -> std::io::Result<()> {
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("an MD5 key has 1 to {MAX_KEY} bytes, not {}", key.len()),
        ));
    }
    let mut sig = TcpMd5Sig {
        addr: sockaddr(peer),
        flags: 0,
        prefixlen: 0,
        keylen: key.len() as u16,
        ifindex: 0,
        key: [0; MAX_KEY],
    };
    sig.key[..key.len()].copy_from_slice(key);
    // SAFETY: the pointer and length describe `sig`, a live `#[repr(C)]` value laid out
    // as the kernel's `struct tcp_md5sig`; the kernel only reads it during the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_MD5SIG,
            (&raw const sig).cast(),
            std::mem::size_of::<TcpMd5Sig>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_has_the_kernels_size_and_addresses_its_layout() {
        assert_eq!(std::mem::size_of::<TcpMd5Sig>(), 216);
        let a = sockaddr("192.0.2.1:179".parse().unwrap());
        assert_eq!(u16::from_ne_bytes([a[0], a[1]]), libc::AF_INET as u16);
        assert_eq!(&a[2..8], &[0, 179, 192, 0, 2, 1]);
        let a = sockaddr("[2001:db8::1]:179".parse().unwrap());
        assert_eq!(u16::from_ne_bytes([a[0], a[1]]), libc::AF_INET6 as u16);
        assert_eq!(a[8], 0x20);
        assert_eq!(a[23], 1);
    }

    #[test]
    fn a_socket_takes_a_key_and_refuses_an_empty_or_long_one() {
        let s = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = "127.0.0.1:179".parse().unwrap();
        sign(&s, peer, b"secret").expect("a key");
        assert!(sign(&s, peer, b"").is_err());
        assert!(sign(&s, peer, &[b'k'; MAX_KEY + 1]).is_err());
    }
}
