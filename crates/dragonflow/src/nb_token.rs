//! `dragonflow nb-token` (a host's, the admin's or a reader's token for the server's NB
//! secret), and reading a token the way every subcommand that needs one does.

use std::path::{Path, PathBuf};

/// Where a server keeps the NB secret when the store is not an embedded file beside it.
pub const DEFAULT_SECRET: &str = "/var/lib/dragonflow/nb-secret";

#[derive(clap::Args)]
#[group(skip)]
#[command(group(clap::ArgGroup::new("who").required(true).args(["host", "admin", "reader"])))]
pub struct Args {
    /// The server's NB secret.
    #[arg(long, default_value = DEFAULT_SECRET)]
    secret_file: PathBuf,
    /// The token of this host's controller (its --chassis).
    #[arg(long)]
    host: Option<String>,
    /// The admin token: reads and writes anything (repairs).
    #[arg(long)]
    admin: bool,
    /// A read-only token (`dragonflow db`, monitoring).
    #[arg(long)]
    reader: bool,
}

/// Prints the token, on one line.
pub fn print(a: Args) -> Result<(), String> {
    use neutron_api::nb_auth::{NbAuth, Principal};
    let secret = std::fs::read(&a.secret_file).map_err(|e| {
        format!(
            "cannot read the NB secret {}: {e} (the server makes it at its first start)",
            a.secret_file.display()
        )
    })?;
    let auth = NbAuth::new(&secret).map_err(|e| format!("{}: {e}", a.secret_file.display()))?;
    let who = match (a.host, a.admin) {
        (Some(h), _) if h.is_empty() => return Err("--host needs a chassis name".into()),
        (Some(h), _) => Principal::Host(h),
        (None, true) => Principal::Admin,
        (None, false) => Principal::Reader,
    };
    println!("{}", auth.token(&who));
    Ok(())
}

/// The NB token from `file`, else from `DRAGONFLOW_NB_TOKEN` (never a flag: a command
/// line is visible to every user of the machine).
pub fn read(file: Option<&Path>) -> Result<Option<String>, String> {
    let token = match file {
        Some(f) => Some(
            std::fs::read_to_string(f)
                .map_err(|e| format!("cannot read the NB token {}: {e}", f.display()))?,
        ),
        None => std::env::var("DRAGONFLOW_NB_TOKEN").ok(),
    };
    Ok(token
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty()))
}
