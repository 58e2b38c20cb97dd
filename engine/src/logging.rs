//! Logging for the engine process: every line goes to stderr (for `docker logs`) and to
//! `<data-dir>/messages.log` (the reference product's messages.log).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

#[derive(Clone)]
struct Tee {
    file: Option<Arc<File>>,
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        if let Some(f) = &self.file {
            let _ = (&**f).write_all(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for Tee {
    type Writer = Tee;
    fn make_writer(&'a self) -> Tee {
        self.clone()
    }
}

/// Installs the global subscriber. `level` is a filter such as `info` or `engine=debug`;
/// `RUST_LOG` overrides it. Safe to call more than once (later calls do nothing).
pub fn init(messages_log: Option<&Path>, level: &str) {
    let file = messages_log.and_then(|p| OpenOptions::new().create(true).append(true).open(p).ok()).map(Arc::new);
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_target(false)
        .with_writer(Tee { file })
        .try_init();
}
