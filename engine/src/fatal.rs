//! A broken invariant stops the process, not a thread.
//!
//! The binaries (`engine`, `agent`, `mirrorlab-init`) call [`abort_on_panic`] first thing:
//! a panic anywhere (the mirror driver task, the journal writer thread, a connection
//! handler) is logged (stderr and messages.log), then the process aborts. Without it a
//! panicking tokio task or thread ends alone and the process goes on serving with a
//! frozen mirror status, or with writers waiting forever on a journal nobody flushes.
//! Once the process is gone its agent reports it down and the backup takes over.
//!
//! Failures the process can report before stopping (the journal cannot be written or
//! synced: ENOSPC, an fsync error) are not panics: they are the typed
//! [`crate::error::EngineError::JournalFailed`], logged with what failed, and [`report`]ed
//! here; `engine start` waits for a report beside its stop signals, stops its servers and
//! exits with a non-zero status. Never "running but refusing every write".
//!
//! Tests run the libraries with the ordinary unwinding panics, so a test that expects a
//! panic still can.

/// Installs the aborting panic hook (the default hook prints the message and backtrace
/// first).
pub fn abort_on_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("unnamed");
        tracing::error!("fatal: a broken invariant in thread {name}: {info}; the process stops");
        default(info);
        std::process::abort();
    }));
}

fn channel() -> &'static tokio::sync::watch::Sender<Option<String>> {
    static FATAL: std::sync::OnceLock<tokio::sync::watch::Sender<Option<String>>> = std::sync::OnceLock::new();
    FATAL.get_or_init(|| tokio::sync::watch::channel(None).0)
}

/// Reports a failure after which this process must stop (the first report is kept).
pub fn report(reason: String) {
    channel().send_if_modified(|v| {
        if v.is_some() {
            return false;
        }
        *v = Some(reason);
        true
    });
}

/// The first fatal failure reported in this process, if any.
pub fn reported() -> Option<String> {
    channel().borrow().clone()
}

/// Waits until a fatal failure is reported; returns it.
pub async fn wait() -> String {
    let mut rx = channel().subscribe();
    let reason = match rx.wait_for(Option::is_some).await {
        Ok(v) => v.clone(),
        // The sender is a static: it is never dropped.
        Err(_) => None,
    };
    match reason {
        Some(r) => r,
        None => std::future::pending().await,
    }
}
