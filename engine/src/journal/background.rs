//! The single writer thread: flushes when asked, when the buffer is large, and at least
//! every `sync_interval` while anything is buffered.

use super::writer::Journal;
use super::Position;
use crate::error::Result;
use std::sync::Arc;
use std::thread::JoinHandle;

/// The running writer thread. [`WriterHandle::stop`] (or dropping the handle) flushes and
/// joins it.
#[derive(Debug)]
pub struct WriterHandle {
    journal: Arc<Journal>,
    thread: Option<JoinHandle<()>>,
}

impl Journal {
    /// Starts the writer thread.
    pub fn start_writer(self: &Arc<Self>) -> WriterHandle {
        let journal = self.clone();
        let thread = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || writer_loop(&journal))
            .expect("spawning the journal writer thread");
        WriterHandle { journal: self.clone(), thread: Some(thread) }
    }
}

fn writer_loop(journal: &Journal) {
    let interval = journal.options.sync_interval;
    let threshold = journal.options.buffer_flush_bytes;
    loop {
        let stop = {
            let mut signal = journal.signal.lock();
            if !signal.stop && !signal.requested && journal.buffered_bytes() < threshold {
                journal.wake.wait_for(&mut signal, interval);
            }
            signal.requested = false;
            signal.stop
        };
        if journal.buffered_bytes() > 0 {
            if let Err(e) = journal.flush() {
                tracing::error!("journal writer thread stops: {e}");
                return;
            }
        }
        if stop {
            return;
        }
    }
}

impl WriterHandle {
    /// Stops the thread after a last flush; returns the durable position.
    pub fn stop(mut self) -> Result<Position> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<Position> {
        if let Some(thread) = self.thread.take() {
            self.journal.signal.lock().stop = true;
            self.journal.wake.notify_all();
            if thread.join().is_err() {
                tracing::error!("the journal writer thread panicked");
            }
        }
        self.journal.flush()
    }
}

impl Drop for WriterHandle {
    fn drop(&mut self) {
        if self.thread.is_some() {
            if let Err(e) = self.shutdown() {
                tracing::error!("journal: last flush at writer shutdown failed: {e}");
            }
        }
    }
}
