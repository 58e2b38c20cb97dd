//! `engine session`: the terminal ([`crate::terminal`]) connected to an engine over RESP.

use crate::client::{Client, ClientError};
use crate::globals::reference::{format, quote};
use crate::globals::{GlobalRef, Number, Subscript};
use crate::instance::Direction;
use crate::terminal::{Backend, BackendError, Terminal};
use anyhow::{Context, Result};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

/// The terminal's view of a remote engine.
pub struct ClientBackend {
    client: Client,
    /// The namespace, kept here so the prompt costs no round trip.
    namespace: String,
}

impl ClientBackend {
    pub fn new(mut client: Client) -> Result<ClientBackend, ClientError> {
        // The terminal shows the engine's error names (<PROTECT> on a mirror follower),
        // not the READONLY that Redis clients get.
        client.command(&[b"CLIENT", b"ERRORS", b"ENGINE"])?;
        let namespace = client.current_namespace()?;
        Ok(ClientBackend { client, namespace })
    }
}

fn err(e: ClientError) -> BackendError {
    match e {
        ClientError::Server(s) => BackendError::new(s.code, s.message),
        other => BackendError::new("DISCONNECT", other.to_string()),
    }
}

fn direction(backward: bool) -> Direction {
    if backward {
        Direction::Backward
    } else {
        Direction::Forward
    }
}

impl Backend for ClientBackend {
    fn get(&mut self, r: &GlobalRef) -> Result<Option<Vec<u8>>, BackendError> {
        self.client.get(&format(r)).map_err(err)
    }
    fn set(&mut self, r: &GlobalRef, value: &[u8]) -> Result<(), BackendError> {
        self.client.set(&format(r), value).map_err(err)
    }
    fn kill(&mut self, r: &GlobalRef) -> Result<(), BackendError> {
        self.client.kill(&[&format(r)]).map(|_| ()).map_err(err)
    }
    fn zkill(&mut self, r: &GlobalRef) -> Result<(), BackendError> {
        self.client.zkill(&format(r)).map(|_| ()).map_err(err)
    }
    fn data(&mut self, r: &GlobalRef) -> Result<u8, BackendError> {
        self.client.data(&format(r)).map_err(err)
    }
    fn order(
        &mut self,
        parent: &GlobalRef,
        after: Option<&Subscript>,
        backward: bool,
    ) -> Result<Option<Subscript>, BackendError> {
        // ORDER takes the reference of the current sibling; `""` asks for the first or last.
        let text = match after {
            Some(s) => format(&parent.child(s.clone())?),
            None => {
                let base = format(parent);
                let open = if parent.subscripts.is_empty() {
                    format!("{base}(")
                } else {
                    format!("{},", &base[..base.len() - 1])
                };
                format!("{open}{})", quote(b""))
            }
        };
        let found = self.client.order(&text, direction(backward)).map_err(err)?;
        found
            .map(|bytes| Subscript::from_bytes(bytes, parent.subscripts.len() + 1).map_err(BackendError::from))
            .transpose()
    }
    fn query(&mut self, r: &GlobalRef, backward: bool) -> Result<Option<GlobalRef>, BackendError> {
        let found = self.client.query(&format(r), direction(backward)).map_err(err)?;
        found.map(|text| crate::globals::reference::parse(&text).map_err(BackendError::from)).transpose()
    }
    fn increment(&mut self, r: &GlobalRef, by: Number) -> Result<Number, BackendError> {
        let text = self.client.incr(&format(r), &by.to_canonical()).map_err(err)?;
        Ok(Number::parse_prefix(text.as_bytes()))
    }
    fn tstart(&mut self) -> Result<u32, BackendError> {
        self.client.tstart().map_err(err)
    }
    fn tcommit(&mut self) -> Result<(), BackendError> {
        self.client.tcommit().map_err(err)
    }
    fn trollback(&mut self) -> Result<(), BackendError> {
        self.client.trollback().map_err(err)
    }
    fn set_namespace(&mut self, name: &str) -> Result<(), BackendError> {
        self.client.namespace(name).map_err(err)?;
        self.namespace = name.to_ascii_uppercase();
        Ok(())
    }
    fn namespace(&mut self) -> Result<String, BackendError> {
        Ok(self.namespace.clone())
    }
}

/// Runs the terminal on stdin/stdout: interactive on a terminal, a script when piped.
/// `tls`: the superserver speaks TLS only (`--cacert`, or the running engine's state file).
pub fn run(host: &str, port: u16, namespace: &str, tls: Option<&super::transport::Tls>) -> Result<ExitCode> {
    let address = format!("{host}:{port}");
    let connected = match tls {
        Some(tls) => crate::tls::host_server_name(host).map_err(anyhow::Error::new).and_then(|server| {
            Ok(Client::connect_verified(&address, Duration::from_secs(5), tls.config.clone(), server)?)
        }),
        None => Client::connect(&address, Duration::from_secs(5)).map_err(anyhow::Error::new),
    };
    let mut client = connected.with_context(|| {
        format!("no engine answers on {host}:{port} (start one with `engine start`, or pass --port; --cacert when it speaks TLS)")
    })?;
    if let Some(c) = super::credentials::get() {
        client
            .command(&[b"AUTH", c.user.as_bytes(), c.password.as_bytes()])
            .with_context(|| format!("cannot log in to {host}:{port} as {}", c.user))?;
    }
    client.namespace(namespace).map_err(|e| match e.code() {
        Some("NOAUTH") => anyhow::anyhow!(
            "{e}: the engine has users; give --user, and the password in MIRRORLAB_PASSWORD or at the prompt"
        ),
        _ => anyhow::Error::new(e).context(format!("cannot open namespace {namespace}")),
    })?;
    let mut terminal = Terminal::new(ClientBackend::new(client)?);
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    // On a terminal: line editing and history (arrow keys, Ctrl-R) as in the reference
    // product's terminal; piped, plain reads so scripts behave the same everywhere.
    if interactive && std::io::stdout().is_terminal() {
        match Editor::new() {
            Ok(mut editor) => {
                terminal.run_edited(&mut editor, &mut std::io::stdout());
                return Ok(ExitCode::SUCCESS);
            }
            Err(e) => tracing::debug!("no line editing on this terminal: {e}"),
        }
    }
    terminal.run(stdin.lock(), &mut std::io::stdout(), interactive);
    Ok(ExitCode::SUCCESS)
}

/// rustyline, with this session's lines as history (kept in memory only: a terminal's
/// lines may hold values nobody wants in a file).
struct Editor(rustyline::DefaultEditor);

/// Lines of history kept.
const HISTORY_LINES: usize = 500;

impl Editor {
    fn new() -> rustyline::Result<Editor> {
        let config = rustyline::Config::builder().max_history_size(HISTORY_LINES)?.auto_add_history(true).build();
        Ok(Editor(rustyline::DefaultEditor::with_config(config)?))
    }
}

impl crate::terminal::LineEditor for Editor {
    fn read_line(&mut self, prompt: &str) -> Option<String> {
        match self.0.readline(prompt) {
            Ok(line) => Some(line),
            // Ctrl-C drops the line being typed, as in a shell.
            Err(rustyline::error::ReadlineError::Interrupted) => Some(String::new()),
            Err(_) => None,
        }
    }
}
