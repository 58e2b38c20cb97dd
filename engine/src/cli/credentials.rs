//! The credentials of the `engine` CLI's calls to a running engine (`session`, `freeze`,
//! `thaw`, `integrity`, `mirror`): `--user` (environment `MIRRORLAB_USER`) and the
//! password from the environment (`MIRRORLAB_PASSWORD`) or, on a terminal, a prompt that
//! does not echo. Never from an argument: command lines are visible to every user of the
//! machine (`ps`).
//!
//! Set once by the binary after parsing; read by every call site. A process-wide value
//! because every HTTP and RESP call the CLI makes carries the same identity.

use base64::Engine as _;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::OnceLock;

#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

static CREDENTIALS: OnceLock<Option<Credentials>> = OnceLock::new();

/// Records the CLI's identity: with a user (or `MIRRORLAB_PASSWORD` alone, which means
/// user `admin`), the password from `password` or a prompt on the terminal.
pub fn init(user: Option<String>, password: Option<String>) -> Result<(), String> {
    let credentials = match (user, password) {
        (None, None) => None,
        (user, Some(password)) => {
            Some(Credentials { user: user.unwrap_or_else(|| crate::security::BOOTSTRAP_USER.into()), password })
        }
        (Some(user), None) => Some(Credentials { password: prompt(&format!("Password for {user}: "))?, user }),
    };
    let _ = CREDENTIALS.set(credentials);
    Ok(())
}

pub fn get() -> Option<&'static Credentials> {
    CREDENTIALS.get().and_then(|c| c.as_ref())
}

/// `Authorization: Basic ...` for HTTP calls, when credentials were given.
pub fn basic_header() -> Option<String> {
    get().map(|c| {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.user, c.password));
        format!("Authorization: Basic {token}\r\n")
    })
}

/// Reads a password from the terminal with echo off.
fn prompt(text: &str) -> Result<String, String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err("a password is needed and stdin is no terminal: set MIRRORLAB_PASSWORD".into());
    }
    eprint!("{text}");
    let _ = std::io::stderr().flush();
    let fd = libc::STDIN_FILENO;
    // SAFETY: termios is plain data; tcgetattr fills it for a terminal (checked above).
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    let echo_off = unsafe { libc::tcgetattr(fd, &mut saved) } == 0 && {
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) == 0 }
    };
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if echo_off {
        // SAFETY: restores the settings read above.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    }
    eprintln!();
    read.map_err(|e| format!("reading the password: {e}"))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
