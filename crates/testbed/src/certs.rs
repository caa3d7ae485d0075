//! A throw-away certificate authority for TLS tests: a CA, a server certificate for
//! 127.0.0.1 and a client certificate, made by Debian's `openssl` command (EC P-256 keys,
//! quick to make), as PEM files in a directory of the caller's.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The PEM files.
#[derive(Clone, Debug)]
pub struct Certs {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

fn openssl(args: &[&str], dir: &Path) -> io::Result<()> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

impl Certs {
    /// Makes a CA and signs a server and a client certificate with it, in `dir`.
    pub fn make(dir: &Path) -> io::Result<Certs> {
        std::fs::create_dir_all(dir)?;
        let key = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut ca = vec![
            "req",
            "-x509",
            "-days",
            "2",
            "-subj",
            "/CN=dragonflow test CA",
        ];
        ca.extend(key);
        ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
        openssl(&ca, dir)?;
        for (who, ext) in [
            (
                "server",
                "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth",
            ),
            ("client", "extendedKeyUsage=clientAuth"),
        ] {
            let (k, csr, pem, ext_file) = (
                format!("{who}.key"),
                format!("{who}.csr"),
                format!("{who}.pem"),
                format!("{who}.ext"),
            );
            std::fs::write(dir.join(&ext_file), ext)?;
            let subj = format!("/CN={who}");
            let mut req = vec!["req", "-new", "-subj", &subj];
            req.extend(key);
            req.extend(["-keyout", &k, "-out", &csr]);
            openssl(&req, dir)?;
            openssl(
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-days",
                    "2",
                    "-extfile",
                    &ext_file,
                    "-out",
                    &pem,
                ],
                dir,
            )?;
        }
        Ok(Certs {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
        })
    }

    /// The store URL query that trusts the CA and presents the client certificate.
    pub fn query(&self) -> String {
        format!(
            "?ca={}&cert={}&key={}",
            self.ca.display(),
            self.client_cert.display(),
            self.client_key.display()
        )
    }
}
